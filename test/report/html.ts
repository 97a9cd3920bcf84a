/** A structural check of generated HTML: the doctype, balanced tags, and what must be there. */
const VOID = new Set(['meta', 'br', 'img', 'input', 'link', 'hr', 'source', 'wbr', 'area', 'base', 'col', 'embed', 'track']);

export function checkWellFormed(html: string): { tags: Map<string, number> } {
  if (!html.startsWith('<!DOCTYPE html>')) throw new Error('no <!DOCTYPE html>');
  const stack: string[] = [];
  const tags = new Map<string, number>();
  const body = html.replace(/<style>[\s\S]*?<\/style>/, '<style></style>');
  for (const match of body.matchAll(/<(\/?)([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s=>]+(?:="[^"]*")?)*)\s*(\/?)>/g)) {
    const [, closing, name, , selfClosing] = match;
    const tag = name!.toLowerCase();
    if (closing) {
      const open = stack.pop();
      if (open !== tag) throw new Error(`</${tag}> closes <${open}>`);
    } else {
      tags.set(tag, (tags.get(tag) ?? 0) + 1);
      if (!selfClosing && !VOID.has(tag)) stack.push(tag);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed: ${stack.join(', ')}`);
  const stray = body.replace(/<[^>]*>/g, '').match(/[<>]/);
  if (stray) throw new Error('a stray < or > in text');
  return { tags };
}

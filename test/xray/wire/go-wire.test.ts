/** The pure pieces of the Go client: URLs, header names, addresses, JSON text and the first-value scanner. */
import { describe, expect, it } from 'vitest';
import { hostHeader, parseGoUrl, refererText, requestUri, resolveLocation } from '../../../src/xray/wire/go-url.js';
import { canonicalHeaderKey, goHeader, goRequestBytes } from '../../../src/xray/wire/go-request.js';
import { FirstValueScanner, goUtf8Text } from '../../../src/xray/wire/go-json-stream.js';
import { goIpText, goJsonString } from '../../../src/xray/wire/dialect.js';

describe('URLs as net/url keeps them', () => {
  it('keeps the authority as written (a default port stays), removes an IPv6 zone from Host', () => {
    expect(hostHeader(parseGoUrl('http://example.com:80/a'))).toBe('example.com:80');
    expect(hostHeader(parseGoUrl('http://[fe80::1%25eth0]:8080/a'))).toBe('[fe80::1]:8080');
    expect(parseGoUrl('http://[fe80::1%25eth0]:8080/a')).toMatchObject({ hostname: 'fe80::1%eth0', port: 8080 });
    expect(requestUri(parseGoUrl('http://h'))).toBe('/');
    expect(requestUri(parseGoUrl('http://h/a b?x=1'))).toBe('/a%20b?x=1');
  });

  it('resolves a Location like url.Parse + ResolveReference, and prints the Referer without userinfo', () => {
    const base = parseGoUrl('http://u:p@h:1/a/b?q=1');
    expect(refererText(base)).toBe('http://h:1/a/b?q=1');
    expect(requestUri(resolveLocation(base, 'c'))).toBe('/a/c');
    expect(requestUri(resolveLocation(base, '../c?x'))).toBe('/c?x');
    expect(resolveLocation(base, '//other:2/z')).toMatchObject({ host: 'other:2', path: '/z' });
    expect(resolveLocation(base, 'https://s/')).toMatchObject({ scheme: 'https', host: 's' });
    expect(() => resolveLocation(base, 'ftp://x/')).toThrow('unsupported protocol scheme "ftp"');
  });
});

describe('headers as net/http writes them', () => {
  it('canonicalises names like textproto, leaving a name with an invalid byte alone', () => {
    expect(canonicalHeaderKey('x-api-KEY')).toBe('X-Api-Key');
    expect(canonicalHeaderKey('x y')).toBe('x y');
    expect(['Content-Type', 'content-type', '-foo', 'foo--bar', 'X-API-KEY', '', 'a_b', '1x-2y'].map(canonicalHeaderKey)).toEqual(['Content-Type', 'Content-Type', '-Foo', 'Foo--Bar', 'X-Api-Key', '', 'A_b', '1x-2y']);
  });

  it('canonicalises as textproto\'s rule does on 20,000 generated names, canonical or not', () => {
    // The rule in its plainest form: any byte outside the token set leaves the name alone.
    const reference = (name: string): string =>
      /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name) ? name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, dash: string, letter: string) => dash + letter.toUpperCase()) : name;
    const alphabet = ['a', 'z', 'A', 'Z', 'q', 'Q', '-', '--', '0', '_', '.', ' ', ':', 'é', '\u212a', '\x7f', '~', '@'];
    let state = 7;
    const next = (n: number): number => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) % n);
    for (let i = 0; i < 20_000; i++) {
      const name = Array.from({ length: next(8) }, () => alphabet[next(alphabet.length)]).join('');
      expect(canonicalHeaderKey(name), JSON.stringify(name)).toBe(reference(name));
    }
  });

  it('a GET without a body has no Content-Length; a user-set User-Agent takes Go\'s place', () => {
    const url = parseGoUrl('http://h/x');
    expect(goRequestBytes({ method: 'GET', url, header: goHeader([['user-agent', 'ua']]) }).toString()).toBe('GET /x HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\nAccept-Encoding: gzip\r\n\r\n');
  });
});

describe('addresses and strings as Go prints them', () => {
  it('IPv6 in brackets as net.IP.String(): IPv4-compatible in hex, IPv4-mapped folded, a zone kept', () => {
    expect(goIpText('::1.2.3.4')).toBe('[::102:304]');
    expect(goIpText('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(goIpText('2001:DB8:0:0:1:0:0:1')).toBe('[2001:db8::1:0:0:1]');
    expect(goIpText('fe80::1%eth0')).toBe('[fe80::1%eth0]');
    expect(goIpText('not-an-ip')).toBe('not-an-ip');
  });

  it('json.Marshal escapes <, >, &, U+2028, U+2029 and turns a lone surrogate into U+FFFD', () => {
    expect(goJsonString('<a>&\u2028\u2029\ud800')).toBe('"\\u003ca\\u003e\\u0026\\u2028\\u2029\ufffd"');
  });

  it('decodes bytes as utf8.DecodeRune walks them: one U+FFFD per invalid byte', () => {
    expect(goUtf8Text(Buffer.from([0x61, 0xe2, 0x82, 0x62]))).toBe('a\ufffd\ufffdb');
    expect(goUtf8Text(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\ufffd\ufffd\ufffd');
    expect(goUtf8Text(Buffer.from('é€😀'))).toBe('é€😀');
  });
});

describe('the first-value scanner stops where json.Decoder stops', () => {
  const scan = (...chunks: string[]): unknown => {
    const scanner = new FirstValueScanner();
    for (const chunk of chunks) {
      const result = scanner.push(Buffer.from(chunk));
      if (result.state !== 'more') return result;
    }
    return scanner.finish();
  };

  it('an object or array ends at its closing byte, across chunks', () => {
    expect(scan(' {"a":[1,', '{"b":"}"}]}', 'garbage')).toEqual({ state: 'end', length: 20 });
  });

  it('a top-level scalar ends one byte later, or at the end of the body', () => {
    expect(scan('123', ' ')).toEqual({ state: 'end', length: 3 });
    expect(scan('-1.5e3')).toEqual({ state: 'end', length: 6 });
    expect(scan('"x"', 'y')).toEqual({ state: 'end', length: 3 });
  });

  it('stops at the first byte JSON cannot have', () => {
    expect(scan('<html>')).toEqual({ state: 'error' });
    expect(scan('{"a" 1}')).toEqual({ state: 'error' });
    expect(scan('{"a":01}')).toEqual({ state: 'error' });
    expect(scan('')).toEqual({ state: 'error' });
  });
});

/**
 * Deciding a request by capnp-serve's rules (the file is read by rules.ts): rules are tried top to
 * bottom, the first whose every given field holds wins, and the set's default decides the rest.
 * Fields compare against what Proksi sends (docs/proksi-external-auth.md §4): a host without a
 * port, the raw path and query, header names lower-cased, the client as IP:PORT.
 */
import { isIP } from 'node:net';
import { addressOf } from '../../shared/ip.js';
import type { AuthDecision, AuthRequest } from '../wire/schema.js';
import type { ClientIpMatch, Rule, RuleMatch, RuleSet } from './rules.js';

/** The first matching rule's decision, or the default. */
export function decideByRules(set: RuleSet, request: AuthRequest): AuthDecision {
  return matchingRule(set, request)?.decision ?? set.default;
}

/** The rule that decides `request`, or undefined for the default. */
export function matchingRule(set: RuleSet, request: AuthRequest): Rule | undefined {
  return set.rules.find((rule) => matches(rule.match, request));
}

function matches(m: RuleMatch, r: AuthRequest): boolean {
  if (m.method && !m.method.includes(r.method.toUpperCase())) return false;
  if (m.host && !hostMatches(m.host, r.host.toLowerCase())) return false;
  if (m.pathPrefix !== undefined && !r.path.startsWith(m.pathPrefix)) return false;
  if (m.pathRegex && !m.pathRegex.test(r.path)) return false;
  if (m.query !== undefined && r.query !== m.query) return false;
  if (m.clientIp && !clientIpMatches(m.clientIp, r.clientIp)) return false;
  if (m.header) {
    for (const condition of m.header) {
      const values = r.headers.filter((h) => h.name.toLowerCase() === condition.name).map((h) => h.value);
      if (!condition.present) {
        if (values.length > 0) return false;
        continue;
      }
      if (!values.some((v) => (condition.equals === undefined || v === condition.equals) && (condition.regex === undefined || condition.regex.test(v)))) return false;
    }
  }
  return true;
}

function hostMatches(patterns: string[], host: string): boolean {
  return patterns.some((p) => (p.startsWith('*.') ? host.endsWith(p.slice(1)) && host.length > p.length - 1 : host === p));
}

function clientIpMatches(m: ClientIpMatch, clientIp: string): boolean {
  if (m.exact.has(clientIp)) return true;
  const address = addressOf(clientIp);
  if (address === undefined) return false;
  if (m.addresses.has(address)) return true;
  return m.prefixes?.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4') ?? false;
}

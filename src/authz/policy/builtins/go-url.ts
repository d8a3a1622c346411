import type { Value } from './json-values.js';

/**
 * Go's net/url Parse and URL.String for the URIs of certificates (crypto/x509 keeps SAN URIs as *url.URL; OPA
 * returns them as encoding/json writes that struct, and as strings in URIStrings). Ported from net/url:
 * scheme, opaque, userinfo (written as {} by encoding/json: its fields are unexported), host, path with
 * RawPath, query, fragment with RawFragment.
 */
export interface GoUrl {
  Scheme: string;
  Opaque: string;
  User: { username: string; password?: string } | null;
  Host: string;
  Path: string;
  RawPath: string;
  OmitHost: boolean;
  ForceQuery: boolean;
  RawQuery: string;
  Fragment: string;
  RawFragment: string;
}

type Mode = 'path' | 'fragment' | 'host' | 'user';

function shouldEscape(c: string, mode: Mode): boolean {
  if (/[A-Za-z0-9]/.test(c)) return false;
  if (mode === 'host' && "!$&'()*+,;=:[]<>\"".includes(c)) return false;
  if ('-_.~'.includes(c)) return false;
  if ('$&+,/:;=?@'.includes(c)) {
    if (mode === 'path') return c === '?';
    if (mode === 'user') return '@/?:'.includes(c);
    if (mode === 'fragment') return false;
  }
  if (mode === 'fragment' && '!()*'.includes(c)) return false;
  return true;
}

function escape(s: string, mode: Mode): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && !shouldEscape(c, mode) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** net/url validEncoded: a raw path or fragment written back as is only when every byte may appear unescaped. */
function validEncoded(s: string, mode: Mode): boolean {
  for (const c of s) {
    if ("!$&'()*+,;=:@[]%".includes(c)) continue;
    if (c.charCodeAt(0) >= 0x80 || shouldEscape(c, mode)) return false;
  }
  return true;
}

function unescape(s: string, _mode: Mode): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; ) {
    if (s[i] === '%') {
      const h = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(h)) throw new Error(`invalid URL escape "${s.slice(i, i + 3)}"`);
      bytes.push(parseInt(h, 16));
      i += 3;
    } else {
      for (const b of Buffer.from(s[i] as string, 'utf8')) bytes.push(b);
      i++;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** net/url.Parse; throws with Go's message when Go's parse fails. */
export function parseGoUrl(raw: string): GoUrl {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(raw)) throw new Error('net/url: invalid control character in URL');
  const u: GoUrl = { Scheme: '', Opaque: '', User: null, Host: '', Path: '', RawPath: '', OmitHost: false, ForceQuery: false, RawQuery: '', Fragment: '', RawFragment: '' };
  let rest = raw;
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    const f = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
    u.Fragment = unescape(f, 'fragment');
    u.RawFragment = escape(u.Fragment, 'fragment') === f ? '' : f;
  }
  if (rest === '*') {
    u.Path = '*';
    return u;
  }
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(rest);
  if (rest.startsWith(':')) throw new Error('missing protocol scheme');
  if (m) {
    u.Scheme = (m[1] as string).toLowerCase();
    rest = rest.slice(m[0].length);
  }
  if (rest.endsWith('?') && rest.split('?').length === 2) {
    u.ForceQuery = true;
    rest = rest.slice(0, -1);
  } else {
    const q = rest.indexOf('?');
    if (q >= 0) {
      u.RawQuery = rest.slice(q + 1);
      rest = rest.slice(0, q);
    }
  }
  if (!rest.startsWith('/')) {
    if (u.Scheme !== '') {
      u.Opaque = rest;
      return u;
    }
    if ((rest.split('/')[0] as string).includes(':')) throw new Error('first path segment in URL cannot contain colon');
  }
  if ((u.Scheme !== '' || !rest.startsWith('///')) && rest.startsWith('//')) {
    let authority = rest.slice(2);
    rest = '';
    const slash = authority.indexOf('/');
    if (slash >= 0) {
      rest = authority.slice(slash);
      authority = authority.slice(0, slash);
    }
    const at = authority.lastIndexOf('@');
    u.Host = parseHost(at < 0 ? authority : authority.slice(at + 1));
    if (at >= 0) {
      const info = authority.slice(0, at);
      const colon = info.indexOf(':');
      u.User = colon < 0 ? { username: unescape(info, 'user') } : { username: unescape(info.slice(0, colon), 'user'), password: unescape(info.slice(colon + 1), 'user') };
    }
  } else if (u.Scheme !== '' && rest.startsWith('/')) {
    u.OmitHost = true;
  }
  u.Path = unescape(rest, 'path');
  u.RawPath = escape(u.Path, 'path') === rest ? '' : rest;
  return u;
}

function parseHost(host: string): string {
  if (host.startsWith('[')) {
    const end = host.lastIndexOf(']');
    if (end < 0) throw new Error("missing ']' in host");
    const port = host.slice(end + 1);
    if (port !== '' && !/^:\d*$/.test(port)) throw new Error(`invalid port "${port}" after host`);
    return unescape(host, 'host');
  }
  const colon = host.lastIndexOf(':');
  if (colon >= 0 && !/^:\d*$/.test(host.slice(colon))) throw new Error(`invalid port "${host.slice(colon)}" after host`);
  return unescape(host, 'host');
}

/** URL.String() */
export function goUrlString(u: GoUrl): string {
  let out = u.Scheme !== '' ? `${u.Scheme}:` : '';
  if (u.Opaque !== '') out += u.Opaque;
  else {
    if (u.Scheme !== '' || u.Host !== '' || u.User) {
      if (!(u.OmitHost && u.Host === '' && !u.User)) {
        if (u.Host !== '' || u.Path !== '' || u.User) out += '//';
        if (u.User) out += `${escape(u.User.username, 'user')}${u.User.password !== undefined ? `:${escape(u.User.password, 'user')}` : ''}@`;
        if (u.Host !== '') out += escape(u.Host, 'host');
      }
    }
    const path = u.RawPath !== '' && validEncoded(u.RawPath, 'path') && unescapeOk(u.RawPath) === u.Path ? u.RawPath : u.Path === '*' ? '*' : escape(u.Path, 'path');
    if (path !== '' && !path.startsWith('/') && u.Host !== '') out += '/';
    if (out === '' && (path.split('/')[0] as string).includes(':')) out += './';
    out += path;
  }
  if (u.ForceQuery || u.RawQuery !== '') out += `?${u.RawQuery}`;
  if (u.Fragment !== '') out += `#${u.RawFragment !== '' && validEncoded(u.RawFragment, 'fragment') && unescapeOk(u.RawFragment) === u.Fragment ? u.RawFragment : escape(u.Fragment, 'fragment')}`;
  return out;
}

function unescapeOk(s: string): string | undefined {
  try {
    return unescape(s, 'path');
  } catch {
    return undefined;
  }
}

/** The url.URL struct as encoding/json writes it. */
export function goUrlValue(u: GoUrl): Value {
  return { ...u, User: u.User ? {} : null };
}

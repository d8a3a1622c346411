/**
 * `input.parsed_path` and `input.parsed_query` exactly as the OPA Envoy plugin derives them: the path without
 * its query, URL-unescaped, leading slashes trimmed, split on "/"; the query as key -> list of values.
 */
export class PathError extends Error {}

export function splitPathAndQuery(path: string): { pathOnly: string; rawQuery: string } {
  const q = path.indexOf('?');
  return q === -1 ? { pathOnly: path, rawQuery: '' } : { pathOnly: path.slice(0, q), rawQuery: path.slice(q + 1) };
}

export function parsePath(pathOnly: string): string[] {
  let unescaped: string;
  try {
    unescaped = pathOnly.includes('%') ? decodeURIComponent(pathOnly) : pathOnly;
  } catch {
    throw new PathError(`request path "${pathOnly}" has an invalid percent-encoding`);
  }
  let start = 0;
  while (start < unescaped.length && unescaped[start] === '/') start++;
  return unescaped.slice(start).split('/');
}

export function parseQuery(rawQuery: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (rawQuery === '') return out;
  for (const [key, value] of new URLSearchParams(rawQuery)) {
    const list = out[key];
    if (list) list.push(value);
    else out[key] = [value];
  }
  return out;
}

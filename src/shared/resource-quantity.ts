/**
 * Kubernetes resource quantities (k8s.io/apimachinery resource.Quantity): a decimal number with an optional
 * suffix, binary (Ki, Mi, Gi, Ti, Pi, Ei), decimal SI (n, u, m, k, M, G, T, P, E) or a decimal exponent
 * (e3, E-2). Signs are not accepted: no limit toolgate reads can be negative. Parsed to a plain number
 * (bytes for memory, cores for CPU), which is exact enough to compare limits and to write cgroup files.
 */
const QUANTITY = /^(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

const SUFFIX: Readonly<Record<string, number>> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

export class QuantityError extends Error {}

/** The value of a quantity ("256Mi" -> 268435456, "250m" -> 0.25); throws QuantityError when it is not one. */
export function parseQuantity(text: string): number {
  const m = QUANTITY.exec(text);
  if (!m) throw new QuantityError(`"${text}" is not a Kubernetes quantity (e.g. 64Mi, 1Gi, 500m, 2)`);
  const suffix = m[2];
  const base = Number(m[1]);
  if (suffix === undefined) return base;
  // "E" alone is exa; "e3" / "E-2" are exponents.
  if (suffix.length > 1 && (suffix[0] === 'e' || suffix[0] === 'E')) return base * 10 ** Number(suffix.slice(1));
  return base * (SUFFIX[suffix] as number);
}

/** Memory in whole bytes (rounded down: a limit made of a fraction of a byte only gets tighter). */
export function memoryBytes(quantity: string): number {
  return Math.floor(parseQuantity(quantity));
}

/** CPU in millicores, rounded up as Kubernetes rounds CPU to milli precision ("0.1m" is 1m). */
export function cpuMillis(quantity: string): number {
  return Math.ceil(Math.round(parseQuantity(quantity) * 1e9) / 1e6);
}

import { STANDARD_WINDOWS } from './history-input.js';

/**
 * authz config `history:` (all optional):
 *   read: auto            # auto: fetch input.history only when the active bundle reads it (the embedded
 *                         # engine looks in the bundle's wasm; the remote engine cannot see the bundle, so
 *                         # auto means always there); always; never (input.history is then absent)
 *   windows_ms: { "1m": 60000, "1h": 3600000 }   # what "1m" and "1h" span (shorter only in tests)
 *   max_entries_per_series: 10000                 # counts saturate there (per agent, tool, arguments)
 */
export interface HistoryConfig {
  read: 'auto' | 'always' | 'never';
  windows_ms: { '1m': number; '1h': number };
  max_entries_per_series: number;
}

export const HISTORY_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    read: { enum: ['auto', 'always', 'never'] },
    windows_ms: {
      type: 'object',
      additionalProperties: false,
      properties: { '1m': { type: 'integer', minimum: 100, maximum: 86_400_000 }, '1h': { type: 'integer', minimum: 100, maximum: 604_800_000 } },
    },
    max_entries_per_series: { type: 'integer', minimum: 10, maximum: 1_000_000 },
  },
} as const;

export function resolveHistoryConfig(raw: Partial<HistoryConfig> | undefined): HistoryConfig {
  const short = raw?.windows_ms?.['1m'] ?? STANDARD_WINDOWS.shortMs;
  const long = Math.max(short, raw?.windows_ms?.['1h'] ?? STANDARD_WINDOWS.longMs);
  return { read: raw?.read ?? 'auto', windows_ms: { '1m': short, '1h': long }, max_entries_per_series: raw?.max_entries_per_series ?? 10_000 };
}

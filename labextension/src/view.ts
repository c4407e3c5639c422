/**
 * Shapes of the server extension's API (contract 4) and the few pure helpers the panel uses
 * to lay them out. All rules live in Python; these only arrange what the API says.
 */

export interface VersionInfo {
  version: number;
  state: string;
  error: string;
}

export interface ModelInfo {
  name: string;
  base_path: string;
  policy: string;
  labels: Record<string, number>;
  versions: VersionInfo[];
}

export interface ServerInfo {
  name: string;
  pid: number;
  rest_api_port: number;
  url: string;
  alive: boolean;
  proxy_url: string;
  models: string[];
  status: { models: ModelInfo[] } | null;
  curl: Record<string, string>;
}

export interface Row {
  version: number;
  state: string;
  labels: string;
  error: string;
}

/** One row per version as the API lists them; labels shown next to their version, and an END
 * with an error shown as FAILED. */
export function versionRows(model: ModelInfo): Row[] {
  const byVersion = new Map<number, string[]>();
  for (const [label, version] of Object.entries(model.labels)) {
    byVersion.set(version, [...(byVersion.get(version) ?? []), label]);
  }
  return model.versions.map(v => ({
    version: v.version,
    state: v.state === 'END' && v.error ? 'FAILED' : v.state,
    labels: (byVersion.get(v.version) ?? []).sort().join(', '),
    error: v.error
  }));
}

/** The absolute proxy URL a user can copy. */
export function absoluteUrl(origin: string, proxyUrl: string): string {
  return origin.replace(/\/$/, '') + proxyUrl;
}

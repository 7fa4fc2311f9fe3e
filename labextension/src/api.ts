/** Calls to the nbexp server extension, with Jupyter's auth and XSRF handled by ServerConnection. */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** How many times a request the server answered "busy" (503 with Retry-After) is tried again. */
export const BUSY_RETRIES = 5;
export const BUSY_MESSAGE = 'ledger busy, retrying';

/**
 * Call the API. A 503 with Retry-After (another process holds the ledger's write lock) is
 * retried after the wait the server asks for, up to BUSY_RETRIES times; `onBusy` hears
 * "ledger busy, retrying (n/BUSY_RETRIES)" before each wait, and null once it is over.
 */
export async function requestAPI<T>(
  path: string,
  params: Record<string, string | number | undefined> = {},
  init: RequestInit = {},
  onBusy?: (message: string | null) => void
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const query = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  const url = URLExt.join(settings.baseUrl, 'nbexp', 'api', path) + (query ? `?${query}` : '');
  let response = await ServerConnection.makeRequest(url, init, settings);
  try {
    for (let attempt = 1; attempt <= BUSY_RETRIES && isBusy(response); attempt++) {
      onBusy?.(`${BUSY_MESSAGE} (${attempt}/${BUSY_RETRIES})`);
      const seconds = Math.min(Number(response.headers.get('Retry-After')) || 1, 30);
      await new Promise(resolve => window.setTimeout(resolve, seconds * 1000));
      response = await ServerConnection.makeRequest(url, init, settings);
    }
  } finally {
    onBusy?.(null);
  }
  const text = await response.text();
  const body = text ? JSON.parse(text) : {};
  if (!response.ok) {
    if (response.status === 404 && !body.error) {
      throw new Error('the nbexp server extension is not running: pip install nbexp, then restart Jupyter');
    }
    // the error's JSON rides along as `detail` (the runs table shows a query error at its position)
    throw Object.assign(new Error(body.error?.message ?? `nbexp API ${response.status}`), { detail: body.error });
  }
  return body as T;
}

function isBusy(response: Response): boolean {
  return response.status === 503 && response.headers.has('Retry-After');
}

/** Download the runs as a bundle file (`nbexp import` merges it into another ledger). */
export async function downloadBundle(ids: string[]): Promise<string> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'nbexp', 'api', 'export') + `?runs=${encodeURIComponent(ids.join(','))}`;
  const response = await ServerConnection.makeRequest(url, {}, settings);
  if (!response.ok) {
    const text = await response.text();
    let message = `nbexp export ${response.status}`;
    try {
      message = JSON.parse(text).error?.message ?? message;
    } catch {
      // not JSON: keep the status
    }
    throw new Error(message);
  }
  const disposition = response.headers.get('Content-Disposition') ?? '';
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? 'runs.nbexp';
  const link = document.createElement('a');
  link.href = URL.createObjectURL(await response.blob());
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  return name;
}

/**
 * The URL of stored content (a figure, a table's text, an artifact) by its SHA-256. A GET the
 * page's login cookie authenticates, so it can be an `<img>` src or a download link; the server
 * serves text as text/plain under a sandboxing CSP, never as a page.
 */
export function blobURL(hash: string): string {
  return URLExt.join(ServerConnection.makeSettings().baseUrl, 'nbexp', 'api', 'blobs', encodeURIComponent(hash));
}

/** Stored content as text (plotly JSON, HTML and printed text, shown as text). */
export async function blobText(hash: string): Promise<string> {
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(blobURL(hash), {}, settings);
  if (!response.ok) {
    throw new Error(`nbexp API ${response.status}`);
  }
  return response.text();
}

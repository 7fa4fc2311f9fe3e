/** Small formatting helpers shared by the views. */

export function fmt(value: unknown): string {
  if (value === null || value === undefined) {
    return '–';
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : value.toPrecision(4).replace(/\.?0+$/, '');
  }
  if (typeof value === 'string') {
    return value;
  }
  return JSON.stringify(value);
}

export function when(ts: number | null): string {
  if (!ts) {
    return '–';
  }
  const d = new Date(ts * 1000);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') {
      node.className = v;
    } else {
      node.setAttribute(k, v);
    }
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A plain HTML table: tests and screen readers can read it. */
export function table(label: string, header: string[], rows: unknown[][]): HTMLTableElement {
  const t = el('table', { class: 'nbexp-table', 'aria-label': label });
  const head = t.createTHead().insertRow();
  for (const h of header) {
    head.appendChild(el('th', { scope: 'col' }, h));
  }
  const body = t.createTBody();
  for (const r of rows) {
    const tr = body.insertRow();
    r.forEach(v => (tr.insertCell().textContent = fmt(v)));
  }
  return t;
}

/** A runs-table field's value as its cell shows it (times as dates, durations in s / min / h). */
export function fieldText(column: string, value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if ((column === 'start_time' || column === 'end_time') && typeof value === 'number') {
    return new Date(value * 1000).toLocaleString([], {
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit'
    });
  }
  if (column === 'duration' && typeof value === 'number') {
    return value < 60
      ? `${value.toFixed(1)} s`
      : value < 3600
        ? `${(value / 60).toFixed(1)} min`
        : `${(value / 3600).toFixed(1)} h`;
  }
  return fmt(value);
}

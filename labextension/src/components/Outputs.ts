/**
 * What a run's cells showed and the files it kept, for the run view (GET runs/ID/outputs).
 *
 * Images are `<img>` elements whose src is the blob's URL (the page's login cookie authenticates the
 * GET); plotly figures are drawn from their JSON; printed text in a `<pre>`. HTML is never put in the page:
 * it is parsed in an inert document (DOMParser: no script runs, no image loads) and shown by its text form
 * (textContent only: a scikit-learn estimator as `LogisticRegression(C=0.1)`, a table as rows of cells),
 * with its source, as text, one click away. Each output is labelled by what made it: `Out[n]` for a cell's
 * result, "printed" and "displayed" for the rest. Artifacts are listed with their size and a download link
 * when their bytes are in the ledger.
 */
import { blobText, blobURL, requestAPI } from '../api';
import { el } from './format';
import { drawFigure } from './plot';

const MAX_TEXT = 20_000; // characters of one text output shown

export function bytes(n: number): string {
  if (n < 1024) {
    return `${n} B`;
  }
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function textOutput(node: HTMLElement, hash: string, kind: string): void {
  const pre = el('pre', { class: `nbexp-output-text nbexp-output-${kind}` }, '…');
  node.appendChild(pre);
  blobText(hash).then(
    text => {
      pre.textContent = clip(text);
    },
    e => {
      pre.textContent = `could not load: ${(e as Error).message}`;
    }
  );
}

const BLOCKS = new Set(['P', 'DIV', 'BR', 'LI', 'PRE', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'TABLE', 'UL', 'OL']);

/**
 * The text a person reads in an HTML output, from an inert parse of it (never attached to the page).
 * scikit-learn's estimator HTML carries its text repr (`.sk-text-repr-fallback pre`): that is the answer.
 * Otherwise styles, scripts and hidden parts are dropped, a table becomes one line per row with its cells
 * joined by " | ", and block elements end lines.
 */
export function htmlText(html: string): string {
  const doc = new DOMParser().parseFromString(html, 'text/html');
  const sk = doc.querySelector('.sk-text-repr-fallback pre');
  if (sk) {
    return (sk.textContent ?? '').trim();
  }
  doc.querySelectorAll('style, script, template, noscript, [hidden]').forEach(n => n.remove());
  doc.querySelectorAll('table').forEach(t => {
    const rows = Array.from(t.querySelectorAll('tr')).map(tr =>
      Array.from(tr.querySelectorAll('th, td'))
        .map(c => (c.textContent ?? '').trim())
        .join(' | ')
    );
    t.replaceWith(doc.createTextNode('\n' + rows.join('\n') + '\n'));
  });
  doc.querySelectorAll('*').forEach(n => {
    if (BLOCKS.has(n.tagName)) {
      n.after(doc.createTextNode('\n'));
    }
  });
  return (doc.body?.textContent ?? '')
    .split('\n')
    .map(line => line.replace(/[ \t]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function clip(text: string): string {
  return text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) + '\n…' : text;
}

/** An HTML output by its text form, its source (as text) under a "HTML source" disclosure. */
function htmlOutput(node: HTMLElement, hash: string, kind: string): void {
  const pre = el('pre', { class: `nbexp-output-text nbexp-output-${kind}`, 'data-mime': 'text/html' }, '…');
  const source = el('details', { class: 'nbexp-output-source' });
  source.appendChild(el('summary', {}, 'HTML source'));
  const raw = el('pre', { class: 'nbexp-output-text nbexp-output-html-source' });
  source.appendChild(raw);
  node.append(pre, source);
  blobText(hash).then(
    text => {
      pre.textContent = clip(htmlText(text)) || '(HTML with no text)';
      raw.textContent = clip(text);
    },
    e => {
      pre.textContent = `could not load: ${(e as Error).message}`;
    }
  );
}

/** What an output's label says: `Out[n]` for a cell's result only (as in the notebook), else how it came. */
export function outputLabel(kind: string, count: number | null): string {
  if (kind === 'result') {
    return `Out[${count ?? ' '}]`;
  }
  const n = `In [${count ?? ' '}]`;
  return kind === 'stdout' ? `${n} printed` : `${n} displayed`;
}

function figureOutput(node: HTMLElement, hash: string): void {
  const box = el('div', { class: 'nbexp-output-figure' });
  node.appendChild(box);
  blobText(hash)
    .then(text => {
      const fig = JSON.parse(text);
      return drawFigure(box, { data: fig.data ?? [], layout: fig.layout ?? {} });
    })
    .catch(e => {
      box.textContent = `figure not drawn: ${(e as Error).message}`;
    });
}

function output(node: HTMLElement, o: any, count: number | null): void {
  node.appendChild(el('div', { class: 'nbexp-output-prompt', 'data-kind': o.kind }, outputLabel(o.kind, count)));
  if (o.mime === 'image/png' || o.mime === 'image/jpeg') {
    const img = el('img', {
      class: 'nbexp-output-image',
      src: blobURL(o.hash),
      alt: `${o.kind} ${o.mime}`,
      loading: 'lazy'
    });
    node.appendChild(img);
  } else if (o.mime === 'application/vnd.plotly.v1+json') {
    figureOutput(node, o.hash);
  } else if (o.mime === 'text/html') {
    htmlOutput(node, o.hash, o.kind);
  } else {
    textOutput(node, o.hash, o.kind);
  }
}

function artifacts(list: any[]): HTMLElement {
  const ul = el('ul', { class: 'nbexp-artifacts', 'aria-label': 'Artifacts' });
  for (const a of list) {
    const li = el('li', {});
    li.appendChild(el('span', { class: 'nbexp-artifact-name' }, a.name));
    li.appendChild(
      document.createTextNode(` · ${bytes(a.size)} · ${a.sha256 ? a.sha256.slice(0, 12) : 'not hashed'} · `)
    );
    if (a.stored) {
      const link = el('a', { href: blobURL(a.sha256), download: a.name.split('/').pop() ?? a.name }, 'download');
      li.appendChild(link);
    } else {
      li.appendChild(document.createTextNode('not copied (too large)'));
    }
    ul.appendChild(li);
  }
  return ul;
}

/** The "Outputs" and "Artifacts" sections of a run, filled when the request answers. */
export function outputsSection(runId: string): HTMLElement {
  const box = el('section', { class: 'nbexp-outputs' });
  box.appendChild(el('h3', {}, 'Outputs'));
  const body = el('div', {}, 'Loading…');
  box.appendChild(body);
  requestAPI<any>(`runs/${runId}/outputs`).then(
    res => {
      body.replaceChildren();
      if (!res.cells.length) {
        body.appendChild(el('p', {}, 'Outputs: none kept (nothing displayed or printed in this run).'));
      }
      for (const c of res.cells) {
        const cellBox = el('div', { class: 'nbexp-output-cell' });
        for (const o of c.outputs) {
          output(cellBox, o, c.execution_count);
        }
        body.appendChild(cellBox);
      }
      body.appendChild(el('h3', {}, 'Artifacts'));
      body.appendChild(
        res.artifacts.length
          ? artifacts(res.artifacts)
          : el('p', {}, 'Artifacts: none (files a cell saves, or nbexp.log_artifact, appear here).')
      );
    },
    e => {
      body.textContent = `Outputs: could not load (${(e as Error).message})`;
    }
  );
  return box;
}

const FIGURE_MIMES = new Set(['image/png', 'image/jpeg', 'application/vnd.plotly.v1+json']);

/** One cell execution of one run, as runs/ID/outputs lists it. */
interface ICellOutputs {
  cell_key: string;
  start: number;
  execution_count: number | null;
  outputs: { seq: number; kind: string; mime: string; hash: string; size: number }[];
}

/**
 * Rows of figures side by side: one row per notebook cell that showed a figure, one column per run.
 * Each run keeps the last execution of each cell (what the cell showed last in that run). A cell is
 * matched across runs by its key (the Jupyter cell id, so a tweaked cell stays the same cell); cells
 * left unmatched (no cell id: keys are code hashes, which a tweak changes) fill the rows the run has
 * no cell in yet, in notebook order, so the second figure of run A meets the second of run B.
 */
export function alignFigures(perRun: ICellOutputs[][]): (ICellOutputs | null)[][] {
  const rows: (ICellOutputs | null)[][] = [];
  const rowOf = new Map<string, number>();
  perRun.forEach((cells, j) => {
    const last = new Map<string, ICellOutputs>();
    for (const c of cells) {
      if (c.outputs.some(o => FIGURE_MIMES.has(o.mime))) {
        last.delete(c.cell_key); // re-insert: ordered by the cell's last execution
        last.set(c.cell_key, c);
      }
    }
    const left: ICellOutputs[] = [];
    for (const [key, c] of last) {
      const i = rowOf.get(key);
      if (i !== undefined && rows[i][j] === null) {
        rows[i][j] = c;
      } else {
        left.push(c);
      }
    }
    for (const c of left) {
      let i = rows.findIndex(row => row[j] === null);
      if (i < 0) {
        i = rows.push(perRun.map(() => null)) - 1;
      }
      rows[i][j] = c;
      if (!rowOf.has(c.cell_key)) {
        rowOf.set(c.cell_key, i);
      }
    }
  });
  return rows;
}

function figures(c: ICellOutputs | null, runId: string): HTMLElement {
  const box = el('div', { class: 'nbexp-compare-output', 'data-run': runId });
  if (!c) {
    box.appendChild(el('p', { class: 'nbexp-output-none' }, 'no figure in this run'));
    return box;
  }
  for (const o of c.outputs) {
    if (FIGURE_MIMES.has(o.mime)) {
      output(box, o, c.execution_count);
    }
  }
  return box;
}

/**
 * The compare view's Outputs tab: the figures each run's cells showed, side by side per cell (run A's
 * loss plot next to run B's), with a note where a cell's figures are byte-identical in every run.
 */
export function compareOutputs(runs: { id: string; name: string | null }[]): HTMLElement {
  const box = el('section', { class: 'nbexp-compare-outputs', 'aria-label': 'Outputs side by side' });
  box.appendChild(el('p', {}, 'Loading…'));
  Promise.all(runs.map(r => requestAPI<any>(`runs/${r.id}/outputs`))).then(
    answers => {
      box.replaceChildren();
      const rows = alignFigures(answers.map(a => a.cells as ICellOutputs[]));
      if (!rows.length) {
        box.appendChild(el('p', {}, 'Outputs: none of these runs kept a figure.'));
        return;
      }
      const columns = `repeat(${runs.length}, minmax(0, 1fr))`;
      const grid = el('div', { class: 'nbexp-compare-grid' });
      const header = el('div', { class: 'nbexp-compare-grid-row nbexp-compare-grid-header' });
      header.style.gridTemplateColumns = columns;
      for (const r of runs) {
        header.appendChild(el('div', {}, r.name ? `${r.name} (${r.id})` : r.id));
      }
      grid.appendChild(header);
      rows.forEach((row, i) => {
        const hashes = row.map(c => (c ? c.outputs.filter(o => FIGURE_MIMES.has(o.mime)).map(o => o.hash) : null));
        const same = runs.length > 1 && hashes.every(h => h !== null && h.join() === hashes[0]!.join());
        const line = el('div', { class: 'nbexp-compare-grid-row', 'data-row': String(i) });
        line.style.gridTemplateColumns = columns;
        row.forEach((c, j) => line.appendChild(figures(c, runs[j].id)));
        if (same) {
          line.appendChild(el('p', { class: 'nbexp-output-same' }, 'same figure in every run'));
        }
        grid.appendChild(line);
      });
      box.appendChild(grid);
    },
    e => {
      box.textContent = `Outputs: could not load (${(e as Error).message})`;
    }
  );
  return box;
}

/**
 * What a run's cells showed and the files it kept, for the run view (GET runs/ID/outputs).
 *
 * Images are `<img>` elements whose src is the blob's URL (the page's login cookie authenticates the
 * GET); plotly figures are drawn from their JSON; HTML and printed text are shown as text in a `<pre>`
 * (textContent, never innerHTML: a stored table is not a page to run). Artifacts are listed with
 * their size and a download link when their bytes are in the ledger.
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
      pre.textContent = text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) + '\n…' : text;
    },
    e => {
      pre.textContent = `could not load: ${(e as Error).message}`;
    }
  );
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

function output(node: HTMLElement, o: any): void {
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
        cellBox.appendChild(el('div', { class: 'nbexp-output-prompt' }, `Out[${c.execution_count ?? ' '}]`));
        for (const o of c.outputs) {
          output(cellBox, o);
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

/**
 * Python code coloured by JupyterLab's own highlighting: the code goes through the lab's markdown
 * renderer as a fenced block, which highlights it with the editor's language registry in the theme's
 * colours, the way a markdown cell shows code. Used for the run's cells and the per-cell code diff.
 */
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';

import { el } from './format';

let registry: IRenderMimeRegistry | null = null;

/** The lab's rendermime registry (from the plugin's activate); without it, code shows uncoloured. */
export function setRenderMime(rendermime: IRenderMimeRegistry | null): void {
  registry = rendermime;
}

/** A fence longer than any backtick run in the code, so the code can never end it. */
function fence(code: string): string {
  const longest = Math.max(0, ...(code.match(/`+/g) ?? []).map(run => run.length));
  return '`'.repeat(Math.max(3, longest + 1));
}

/**
 * The code's lines, each a fragment of coloured spans (plain text nodes when the lab gives no
 * highlighting). Lines split at newlines inside spans too (a multi-line string keeps its colour).
 */
export async function highlightLines(code: string): Promise<DocumentFragment[]> {
  const plain = () =>
    code.split('\n').map(line => {
      const f = document.createDocumentFragment();
      f.append(line);
      return f;
    });
  if (!registry) {
    return plain();
  }
  const ticks = fence(code);
  const model = new MimeModel({ data: { 'text/markdown': `${ticks}python\n${code}\n${ticks}` }, trusted: false });
  const renderer = registry.createRenderer('text/markdown');
  try {
    await renderer.renderModel(model);
  } catch {
    return plain();
  }
  const node = renderer.node.querySelector('code');
  if (!node) {
    return plain();
  }
  const lines: DocumentFragment[] = [document.createDocumentFragment()];
  const walk = (n: Node, wrap: (inner: Node) => Node): void => {
    if (n.nodeType === Node.TEXT_NODE) {
      (n.textContent ?? '').split('\n').forEach((part, i) => {
        if (i > 0) {
          lines.push(document.createDocumentFragment());
        }
        if (part) {
          lines[lines.length - 1].appendChild(wrap(document.createTextNode(part)));
        }
      });
    } else if (n instanceof Element) {
      for (const child of Array.from(n.childNodes)) {
        walk(child, inner => {
          const copy = n.cloneNode(false);
          copy.appendChild(inner);
          return wrap(copy);
        });
      }
    }
  };
  for (const child of Array.from(node.childNodes)) {
    walk(child, inner => inner);
  }
  renderer.dispose();
  const want = code.split('\n').length;
  while (lines.length > want && !lines[lines.length - 1].textContent) {
    lines.pop(); // the renderer's trailing newline
  }
  return lines.length === want ? lines : plain();
}

/** A cell's code, coloured: one line per row, in a `pre` labelled `label`. */
export async function codeBlock(code: string, label: string): Promise<HTMLElement> {
  const pre = el('pre', { class: 'nbexp-code nbexp-highlight', 'aria-label': label });
  for (const line of await highlightLines(code)) {
    const row = el('div', { class: 'nbexp-codeline' });
    row.appendChild(line);
    pre.appendChild(row);
  }
  return pre;
}

/** Diff lines (`[tag, text]`, tag one of ' ', '+', '-', '@') coloured: added green, removed red, code highlighted. */
export async function diffBlock(lines: [string, string][], label: string): Promise<HTMLElement> {
  const pre = el('pre', { class: 'nbexp-code nbexp-diff', 'aria-label': label });
  const code = lines.filter(([tag]) => tag !== '@').map(([, text]) => text);
  const coloured = await highlightLines(code.join('\n'));
  let k = 0;
  const kinds: Record<string, string> = { '+': 'nbexp-diff-add', '-': 'nbexp-diff-del', ' ': 'nbexp-diff-same' };
  for (const [tag, text] of lines) {
    if (tag === '@') {
      pre.appendChild(el('div', { class: 'nbexp-codeline nbexp-diff-hunk' }, `${tag}${text}`));
      continue;
    }
    const row = el('div', { class: `nbexp-codeline ${kinds[tag] ?? ''}`, 'data-tag': tag });
    row.appendChild(el('span', { class: 'nbexp-diff-tag', 'aria-hidden': 'true' }, tag));
    row.appendChild(coloured[k++] ?? document.createTextNode(text));
    pre.appendChild(row);
  }
  return pre;
}

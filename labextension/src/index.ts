/** nbexp's JupyterLab plugin: the runs sidebar, the comparison and run views. */
import { ILabShell, ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { CompareView } from './components/CompareView';
import { setRenderMime } from './components/highlight';
import { RunsPanel } from './components/RunsPanel';
import { RunView } from './components/RunView';
import { RunsTable } from './components/RunsTable';
import { IView, RunsModel } from './model';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">
<path d="M4 19h16v2H4zM5 10h3v7H5zm5-4h3v11h-3zm5 7h3v4h-3z"/></g></svg>`;

export const nbexpIcon = new LabIcon({ name: 'nbexp:runs', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbexp:sidebar',
  description: 'The sprint runs recorded by nbexp, live in the left sidebar, compared in the main area.',
  autoStart: true,
  optional: [ILabShell, IRenderMimeRegistry, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    _shell: ILabShell | null,
    rendermime: IRenderMimeRegistry | null,
    restorer: ILayoutRestorer | null
  ) => {
    setRenderMime(rendermime); // code coloured by the lab's own highlighting
    const model = new RunsModel();
    const open = (widget: MainAreaWidget) => {
      const existing = [...app.shell.widgets('main')].find(w => w.id === widget.id);
      if (existing) {
        widget.dispose();
        app.shell.activateById(existing.id);
        return;
      }
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
    };
    const show = (content: Widget) => {
      const widget = new MainAreaWidget({ content });
      widget.id = `${content.id}-tab`;
      widget.title.label = content.title.label;
      widget.title.icon = nbexpIcon;
      open(widget);
    };
    const panel = new RunsPanel({
      model,
      onCompare: ids => show(new CompareView(ids)),
      onOpen: id => show(new RunView(id, ids => show(new CompareView(ids)))),
      onTable: sprint => openTable(sprint)
    });
    // the runs table's tab comes back after a reload on its sprint, query and sort (the layout restorer asks
    // nbexp:open-table again with them; they are saved whenever they change)
    const tables = new WidgetTracker<MainAreaWidget<RunsTable>>({ namespace: 'nbexp-runs-table' });
    model.viewChanged.connect(() => tables.forEach(w => void tables.save(w)));
    // one table, a view of the sidebar's model: it follows the sprint the sidebar shows
    const openTable = (sprint: string, view?: Partial<IView>) => {
      if (sprint !== model.sprint) {
        void model.setSprint(sprint);
      }
      if (view) {
        void model.setView(view);
      }
      const existing = tables.find(() => true);
      if (existing) {
        app.shell.activateById(existing.id);
        return existing;
      }
      const content = new RunsTable({
        model,
        onOpen: id => show(new RunView(id, ids => show(new CompareView(ids)))),
        onCompare: ids => show(new CompareView(ids))
      });
      content.id = 'nbexp-runs-table';
      const widget = new MainAreaWidget({ content });
      widget.id = `${content.id}-tab`;
      widget.title.label = content.title.label;
      widget.title.icon = nbexpIcon;
      void tables.add(widget);
      open(widget);
      return widget;
    };
    app.commands.addCommand('nbexp:open-table', {
      label: 'nbexp: Open the runs table',
      execute: args => {
        const view: Partial<IView> = {};
        if (typeof args.query === 'string') {
          view.query = args.query;
        }
        if (typeof args.sort === 'string' || args.sort === null) {
          view.sort = args.sort as string | null;
        }
        if (typeof args.descending === 'boolean') {
          view.descending = args.descending;
        }
        return openTable(typeof args.sprint === 'string' ? args.sprint : model.sprint, view);
      }
    });
    if (restorer) {
      void restorer.restore(tables, {
        command: 'nbexp:open-table',
        args: () => ({
          sprint: model.sprint,
          query: model.query,
          sort: model.sort,
          descending: model.descending
        }),
        name: () => 'runs-table'
      });
    }
    panel.title.icon = nbexpIcon;
    app.shell.add(panel, 'left', { rank: 900 });
    app.commands.addCommand('nbexp:refresh', {
      label: 'nbexp: Refresh runs',
      execute: () => model.refresh()
    });
  }
};

export default plugin;

"""Write example_notebooks/01-one-day-sprint.ipynb (run once; the notebook is committed)."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

TRAIN_SK = """\
model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=MAX_ITER))
model.fit(X_train, y_train)
test_auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
test_acc = model.score(X_test, y_test)
print(f"C={C}: test_auc={test_auc:.4f} test_acc={test_acc:.4f}")"""

TRAIN_TORCH = """\
torch.manual_seed(SEED)
net = torch.nn.Sequential(torch.nn.Linear(Xt.shape[1], HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 1))
opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9)
loss_fn = torch.nn.BCEWithLogitsLoss()
for epoch in range(EPOCHS):
    opt.zero_grad()
    loss = loss_fn(net(Xt).squeeze(1), yt)
    loss.backward()
    opt.step()
    nbexp.log(step=epoch, train_loss=loss.item())
with torch.no_grad():
    val_loss = loss_fn(net(Xv).squeeze(1), yv).item()
    val_acc = ((net(Xv).squeeze(1) > 0).float() == yv).float().mean().item()
print(f"LR={LR}: val_loss={val_loss:.4f} val_acc={val_acc:.4f}")"""

TRAIN_SYN = """\
X_tr, y_tr = load(MIN_F5)
syn_model = LogisticRegression(max_iter=1000).fit(X_tr, y_tr)
val_f1 = f1_score(y_tr, syn_model.predict(X_tr))
print(f"MIN_F5={MIN_F5}: {len(X_tr)} rows, f1={val_f1:.3f}")"""

cells = [
    new_markdown_cell(
        "# One day sprint with nbexp\n\nNo logging calls needed: `%nbexp track` records every cell, "
        "the hyperparameters it sets and the metrics it computes. Re-running a training cell "
        "after a tweak opens a new run, so the two runs differ by exactly that tweak."
    ),
    new_code_cell("%load_ext nbexp\n%nbexp track baseline --hypothesis 'weaker regularisation helps'"),
    new_code_cell(
        "from sklearn.datasets import load_breast_cancer\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import f1_score, roc_auc_score\nfrom sklearn.model_selection import train_test_split\n"
        "from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler\n\n"
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)"
    ),
    new_markdown_cell("## Baseline, then one tweak"),
    new_code_cell("C = 0.01\nMAX_ITER = 2000"),
    new_code_cell(TRAIN_SK),
    new_code_cell("C = 1.0  # the tweak"),
    new_code_cell(TRAIN_SK),
    new_markdown_cell("## A small sweep: one run per value"),
    new_code_cell(
        "import nbexp\n\nfor c in (0.001, 0.1, 10.0):\n    with nbexp.run(f'sweep C={c}', C=c):\n"
        "        m = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=MAX_ITER))\n"
        "        m.fit(X_train, y_train)\n"
        "        nbexp.log(test_auc=roc_auc_score(y_test, m.predict_proba(X_test)[:, 1]))"
    ),
    new_markdown_cell("## A PyTorch MLP on the CPU, logging the loss every epoch"),
    new_code_cell(
        "%nbexp new torch-mlp\nimport torch\n\nscaler = StandardScaler().fit(X_train)\n"
        "Xt = torch.tensor(scaler.transform(X_train), dtype=torch.float32)\n"
        "yt = torch.tensor(y_train, dtype=torch.float32)\n"
        "Xv = torch.tensor(scaler.transform(X_test), dtype=torch.float32)\n"
        "yv = torch.tensor(y_test, dtype=torch.float32)"
    ),
    new_code_cell("LR = 0.01\nHIDDEN = 16\nEPOCHS = 60\nSEED = 0"),
    new_code_cell(TRAIN_TORCH),
    new_code_cell("LR = 0.1  # the tweak"),
    new_code_cell(TRAIN_TORCH),
    new_markdown_cell(
        "## New data: the same training on a filtered reload\n\n"
        "A synthetic set with a 10% minority class. The second run reloads it with a filter on "
        "feature 5; `nbexp drift` and `nbexp review` flag exactly that feature, and the label's "
        "imbalance is flagged in both runs."
    ),
    new_code_cell(
        "%nbexp new synthetic\nimport numpy as np\nfrom sklearn.datasets import make_classification\n\n"
        "X_syn, y_syn = make_classification(n_samples=6000, n_features=6, n_informative=3, n_redundant=0,\n"
        "                                   shuffle=False, weights=[0.9], random_state=0)\n\n"
        "def load(min_f5=None):\n"
        "    keep = np.ones(len(X_syn), bool) if min_f5 is None else X_syn[:, 5] > min_f5\n"
        "    return X_syn[keep], y_syn[keep]\n\n"
        "MIN_F5 = None"
    ),
    new_code_cell(TRAIN_SYN),
    new_code_cell("MIN_F5 = -0.5  # reload with a filter on feature 5"),
    new_code_cell(TRAIN_SYN),
    new_code_cell("runs = nbexp.runs()\nnbexp.drift(runs.run_id[1], runs.run_id[0]).query('severity != \"ok\"')"),
    new_markdown_cell("## What was recorded"),
    new_code_cell(
        "nbexp.runs(sprint='today').filter(regex=r'^(run_id|name|status|params\\.(C|LR|MIN_F5)|metrics\\.(test_auc|val_loss|val_f1))$')"
    ),
]
nb = new_notebook(
    cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
)
nbformat.write(nb, "example_notebooks/01-one-day-sprint.ipynb")

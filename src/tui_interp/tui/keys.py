"""The workbench's keys as data: the command palette's entries, the keys panel (`?`), and how
focus works, written once here and read by the screen, the palette and the tests."""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding

from tui_interp.tui.widgets.keybar import key_text

VIEWS = ("step", "lens", "patch")
VIEW_TITLES = {"step": "1 step", "lens": "2 lens", "patch": "3 patching"}

# (action, title, help): the command palette offers each one that makes sense at the moment.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("focus_prompt", "Edit the prompt", "Move the cursor to the prompt box (/)"),
    ("step(1)", "Next step", "Run the next step of the forward pass (n, →; held or pressed fast, steps add up)"),
    ("step(-1)", "Previous step", "Go back one step (p, ←)"),
    ("goto('first')", "First step", "Go to the embedding step (g, home)"),
    ("goto('last')", "Last step", "Run to the end of the pass (G, end)"),
    ("head(1)", "Next head", "Show the next attention head of this layer (])"),
    ("head(-1)", "Previous head", "Show the previous attention head of this layer ([)"),
    ("cursor(1)", "Position cursor right", "Move the position cursor one token right (.; ↓ in the step view)"),
    ("cursor(-1)", "Position cursor left", "Move the position cursor one token left (,; ↑ in the step view)"),
    ("cursor_to('first')", "First position", "Put the position cursor on the first token (<)"),
    ("cursor_to('last')", "Last position", "Put the position cursor on the last token (>)"),
    ("show_view('step')", "Step view", "The step: prediction, attention or neurons, norms and lens (1)"),
    ("show_view('lens')", "Lens view", "The logit lens at every stage and position (2)"),
    ("show_view('patch')", "Patching view", "Activation patching, component by position (3)"),
    ("patch_setup", "Run activation patching", "Corrupted prompt and target token, then the table (e)"),
    ("ablate", "Ablate the selected component", "Zero, mean or resample ablation (a)"),
    ("reference", "Choose the ablation reference", "What mean and resample use: random tokens, the theory's inputs, a prompts file (R)"),
    ("undo_intervention", "Remove the last intervention", "Undo the most recent ablation (u)"),
    ("clear_interventions", "Remove all interventions", "Back to the clean model (U)"),
    ("label", "Label the selected component", "Name, note and tags, saved at once (l)"),
    ("dla", "Direct logit attribution", "Each component's direct effect on the prediction (d)"),
    ("suggest", "Suggest head labels", "Match each head's attention to known patterns; enter accepts one (s)"),
    ("toggle_theory", "Show or hide the theory panel", "The theory editor and comparison (t, ctrl+t)"),
    ("compare", "Compare the theory with the model", "Run the theory over its domain (ctrl+r)"),
    ("cancel_compare", "Cancel the comparison", "Stop the running comparison (escape)"),
    ("recover", "Recover the expect", "Search the theory language for the expect the model computes; enter on a candidate fills it in (ctrl+g)"),
    ("cancel_recover", "Cancel the recovery", "Stop the rule search (escape, ctrl+g)"),
    ("audit", "Generalisation audit", "Which model generalises beyond the theory's train split, and the evidence (A)"),
    ("audit_with", "Audit with a second model…", "A model (a path) audited beside the open one"),
    ("cancel_audit", "Cancel the audit", "Stop the running audit (escape)"),
    ("close_audit", "Close the audit view", "Back to the view before it (escape)"),
    ("diff_with", "Diff with a second model…", "Model B (same architecture) beside this one: both stepped, what changed marked ▲"),
    ("toggle_other", "Show model A or B", "The step view of A or of B; side by side, focus the other one (b)"),
    ("diff", "Diff A and B again", "Which components changed most from A to B, on the theory's inputs or random ones (D)"),
    ("cancel_diff", "Cancel the diff", "Stop the running diff (escape)"),
    ("save_theory", "Save the theory", "Write the theory file (ctrl+s)"),
    ("maximize_pane", "Full screen", "The pane with focus (or the theory results) fills the screen; again or esc restores (f)"),
    ("escape", "Back to the workbench", "Leave a text box or the theory panel (escape)"),
    ("show_keys", "Show the keys", "Every key, and how focus works (?, f1)"),
    ("quit", "Quit", "Leave tui-interp (q)"),
)

FOCUS_HELP = (
    ("", "How focus works"),
    ("esc", "from the prompt, the theory editor or any box: back to the workbench"),
    ("", "  (at 80 columns it also closes the theory panel; with nothing to leave, esc"),
    ("", "  cancels a running comparison, or restores a full-screen pane)"),
    ("", "  A running recovery is cancelled first; with nothing to leave,"),
    ("", "  esc cancels an audit or a diff, or closes the audit view."),
    ("enter", "in the prompt: run it and go back to the workbench (also while loading)"),
    ("letters", "act only in the workbench; in a text box every printable key types"),
    ("ctrl keys", "act everywhere: ^t theory, ^r compare, ^s save, ^p palette, ^q quit"),
    ("", "  and ^g recover"),
)
OTHER_KEYS = (
    ("", "Elsewhere"),
    ("enter", "in the tree: go to that component's step; on a counterexample: load it"),
    ("", "  on a recovered candidate: fill in the expect, compare"),
    ("▲", "in the tree: what changed most from A to B (a diff)"),
    ("space", "in the tree: expand or collapse (an MLP lists its top neurons)"),
    ("↑ ↓", "in the step view: move the position cursor; in lists: move"),
    ("x, delete", "in the interventions list: remove the highlighted one"),
    ("tab", "next pane (shift+tab: previous)"),
    ("ctrl+p", "command palette: every action by name, themes"),
    ("ctrl+q", "quit at once"),
)


def keys_text(keys: str) -> str:
    """"n,right" -> "n, →"."""
    return ", ".join(key_text(k) for k in keys.split(","))


def keys_table(bindings: Iterable[object]) -> list[tuple[str, str]]:
    """(keys, what they do) for the keys panel, from the bindings and the palette's help text."""
    by_action: dict[str, list[str]] = {}
    for b in bindings:
        if isinstance(b, Binding):
            by_action.setdefault(b.action, []).append(b.key)
    rows: list[tuple[str, str]] = [("", "Workbench")]
    for action, title, _ in COMMANDS:
        keys = by_action.get(action)
        if keys:
            rows.append((keys_text(",".join(keys)), title))
    return rows + list(FOCUS_HELP) + list(OTHER_KEYS)

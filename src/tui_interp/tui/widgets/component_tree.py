"""The component tree: embed, L0 → attn → H0..Hn, mlp → top neurons, …, unembed, labels inline.

An MLP's neurons are listed when it is expanded (lazily: the top few by activation on the
prompt on view, and the neurons of that layer that carry a label), so they can be selected,
labelled and ablated like any other component.

With a second model B (a diff), the components that changed most from A to B are marked ▲
with their diff score (the legend is the tree's subtitle), and where B's label differs from
A's, B's is shown after A's."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tui_interp.components import parse_component
from tui_interp.engine.workbench import Neuron
from tui_interp.errors import TuiInterpError
from tui_interp.labels import Label
from tui_interp.model.tokenizer import display_text
from tui_interp.tui.messages import ComponentFocused, NeuronsWanted
from tui_interp.tui.text import clip

Structure = list[tuple[str, list[tuple[str, list[str]]]]]
EXPAND_HEADS_UP_TO = 64  # heads in the whole model; more and the attn nodes start collapsed
DIFF_MARK = "▲"


class ComponentTree(Tree[str]):
    """Each node's data is its component id. Highlighting a node focuses it; enter jumps the
    step view to it. Labels show after the id; ablated components are marked ✗."""

    BORDER_TITLE = "Components"

    def __init__(self, **kwargs: object) -> None:
        super().__init__("model", **kwargs)  # type: ignore[arg-type]
        self.show_root = False
        self.guide_depth = 2
        self.auto_expand = False  # enter selects (jumps the step view); space expands and collapses
        self._by_id: dict[str, TreeNode[str]] = {}
        self._labels: dict[str, Label] = {}
        self._ablated: dict[str, str] = {}
        self._acts: dict[str, float] = {}  # neuron -> its peak activation on the prompt
        self._mlps: dict[int, TreeNode[str]] = {}  # layer -> its MLP node
        self._diff: dict[str, float] = {}  # component -> its diff score (the most changed only)
        self._labels_b: dict[str, Label] | None = None  # B's labels, in a diff

    def build(self, structure: Structure) -> None:
        self.clear()
        self._by_id.clear()
        n_heads = sum(len(heads) for _, children in structure for _, heads in children)
        expand_heads = n_heads <= EXPAND_HEADS_UP_TO
        for top, children in structure:
            if not children:
                self._by_id[top] = self.root.add_leaf(self._label(top), data=top)
                continue
            block = self.root.add(self._label(top), data=top, expand=True)
            self._by_id[top] = block
            for child, heads in children:
                if heads:
                    node = block.add(self._label(child), data=child, expand=expand_heads)
                    for head in heads:
                        self._by_id[head] = node.add_leaf(self._label(head), data=head)
                elif child.endswith(".mlp"):
                    node = block.add(self._label(child), data=child, expand=False, allow_expand=True)
                    node.add_leaf(Text("expand for the top neurons", style="dim"), data=None)
                    self._mlps[int(child[1:].split(".")[0])] = node
                else:
                    node = block.add_leaf(self._label(child), data=child)
                self._by_id[child] = node
        self.root.expand()

    @property
    def expanded_mlps(self) -> list[int]:
        """The layers whose MLP node is open (their neurons are shown)."""
        return [layer for layer, node in self._mlps.items() if node.is_expanded]

    def set_neurons(self, layer: int, neurons: tuple[Neuron, ...], note: str = "") -> None:
        """List `neurons` under the layer's MLP, then the layer's labelled neurons not among them."""
        node = self._mlps.get(layer)
        if node is None:
            return
        selected = self.selected
        for child in list(node.children):
            if child.data is not None:
                self._by_id.pop(child.data, None)
        node.remove_children()
        shown = []
        for n in neurons:
            self._acts[n.component] = n.activation
            shown.append(n.component)
        prefix = f"L{layer}.N"
        labelled = sorted((c for c in self._labels if c.startswith(prefix) and c not in shown), key=_neuron_index)
        for component in shown + labelled:
            self._by_id[component] = node.add_leaf(self._label(component), data=component)
        if not shown and not labelled:
            node.add_leaf(Text(note or "no prompt yet", style="dim"), data=None)
        if selected is not None and selected in self._by_id and selected.startswith(prefix):
            self.call_after_refresh(self.move_cursor, self._by_id[selected])
        elif self.cursor_node is node and node.children:
            self.call_after_refresh(self._reveal, node)

    def _reveal(self, node: TreeNode[str]) -> None:
        """Scroll so that an opened node's children show (and the node itself stays in view)."""
        self.scroll_to_node(node.children[-1], animate=False)
        self.scroll_to_node(node, animate=False)

    @property
    def selected(self) -> str | None:
        node = self.cursor_node
        return node.data if node is not None else None

    def select_component(self, component: str) -> bool:
        """Move the cursor to `component`, expanding its parents. False if it is not in the tree."""
        node = self._by_id.get(component)
        if node is None:
            return False
        parent = node.parent
        while parent is not None:
            if not parent.is_expanded:  # expanding an open MLP again would list its neurons again
                parent.expand()
            parent = parent.parent
        if node.line < 0:  # just added or just shown: it has a line once the tree is laid out again
            self.call_after_refresh(self.move_cursor, node)
        else:
            self.move_cursor(node)
        return True

    def set_labels(self, labels: dict[str, Label]) -> None:
        if labels != self._labels:
            new_neurons = {c for c in labels if ".N" in c} - {c for c in self._labels if ".N" in c}
            self._labels = dict(labels)
            self._relabel()
            for layer in self.expanded_mlps:  # a neuron labelled in another layer view: list it
                if any(c.startswith(f"L{layer}.N") and c not in self._by_id for c in new_neurons):
                    self.post_message(NeuronsWanted(layer))

    def set_ablated(self, interventions: tuple[str, ...]) -> None:
        ablated: dict[str, str] = {}
        for spec in interventions:
            component, _, mode = spec.partition(":")
            ablated[component.partition("@")[0]] = mode
        if ablated != self._ablated:
            self._ablated = ablated
            self._relabel()

    def set_diff(self, marks: dict[str, float]) -> None:
        """Mark these components (the most changed from A to B) with ▲ and their score."""
        if marks != self._diff:
            self._diff = dict(marks)
            self._relabel()

    @property
    def diff_marks(self) -> list[str]:
        """The marked components, highest score first."""
        return sorted(self._diff, key=lambda c: -self._diff[c])

    def set_labels_b(self, labels: dict[str, Label] | None) -> None:
        """B's labels (None: no B); shown where they differ from A's."""
        if labels != self._labels_b:
            self._labels_b = None if labels is None else dict(labels)
            self._relabel()

    def _relabel(self) -> None:
        for component, node in self._by_id.items():
            node.set_label(self._label(component))

    def _label(self, component: str) -> Text:
        short = component.rsplit(".", 1)[-1] if component.startswith("L") and "." in component else component
        text = Text(short, style="bold" if component.startswith("L") and "." not in component else "")
        act = self._acts.get(component)
        if act is not None:
            text.append(f" {act:.2f}", style="dim")
        score = self._diff.get(component)
        if score is not None:
            text.append(f" {DIFF_MARK}{score_text(score)}", style="bold")
        mode = self._ablated.get(component)
        if mode:
            text.append(f" ✗{mode}", style="reverse")
        label = self._labels.get(component)
        if label is not None:
            text.append("  ")
            text.append(clip(display_text(label.name), 40), style="italic")
        if self._labels_b is not None:
            other = self._labels_b.get(component)
            if (other.name if other else None) != (label.name if label else None):
                text.append("  B: " if label is not None else "  A: –  B: ", style="dim")
                text.append(clip(display_text(other.name), 40) if other is not None else "–", style="italic")
        return text

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(ComponentFocused(event.node.data, jump=False))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[str]) -> None:
        event.stop()
        data = event.node.data
        if data is not None and data.endswith(".mlp"):
            self.post_message(NeuronsWanted(int(data[1:].split(".")[0])))

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(ComponentFocused(event.node.data, jump=True))


def score_text(score: float) -> str:
    """A diff score in a few cells: 170, 3.4, 0.42, 0.004."""
    if score >= 100:
        return f"{score:.0f}"
    if score >= 1:
        return f"{score:.1f}"
    return f"{score:.2f}" if score >= 0.01 else f"{score:.1g}"


def _neuron_index(component: str) -> int:
    try:
        return parse_component(component).index or 0
    except TuiInterpError:
        return 0

"""The component tree: embed, L0 → attn → H0..Hn, mlp, …, unembed, with labels inline."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tui_interp.labels import Label
from tui_interp.model.tokenizer import display_text
from tui_interp.tui.messages import ComponentFocused
from tui_interp.tui.text import clip

Structure = list[tuple[str, list[tuple[str, list[str]]]]]
EXPAND_HEADS_UP_TO = 64  # heads in the whole model; more and the attn nodes start collapsed


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
                else:
                    node = block.add_leaf(self._label(child), data=child)
                self._by_id[child] = node
        self.root.expand()

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
            parent.expand()
            parent = parent.parent
        self.move_cursor(node)
        return True

    def set_labels(self, labels: dict[str, Label]) -> None:
        if labels != self._labels:
            self._labels = dict(labels)
            self._relabel()

    def set_ablated(self, interventions: tuple[str, ...]) -> None:
        ablated: dict[str, str] = {}
        for spec in interventions:
            component, _, mode = spec.partition(":")
            ablated[component.partition("@")[0]] = mode
        if ablated != self._ablated:
            self._ablated = ablated
            self._relabel()

    def _relabel(self) -> None:
        for component, node in self._by_id.items():
            node.set_label(self._label(component))

    def _label(self, component: str) -> Text:
        short = component.rsplit(".", 1)[-1] if component.startswith("L") and "." in component else component
        text = Text(short, style="bold" if component.startswith("L") and "." not in component else "")
        mode = self._ablated.get(component)
        if mode:
            text.append(f" ✗{mode}", style="reverse")
        label = self._labels.get(component)
        if label is not None:
            text.append("  ")
            text.append(clip(display_text(label.name), 40), style="italic")
        return text

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(ComponentFocused(event.node.data, jump=False))

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(ComponentFocused(event.node.data, jump=True))

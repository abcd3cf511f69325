"""The chart of chargeback flows: an inline SVG, paying departments on the left.

Each flow is one band (`<path class="flow">`) from the paying department on
the left to the paid one on the right, as wide as its share of the chargeable
spend (at least `MIN_BAND_PX`, so that no flow vanishes); a band wide enough
for text carries its amount where it leaves the payer. Coordinates are
floats: they are pixels, not money; every amount shown is exact.
"""

from collections.abc import Sequence
from decimal import Decimal
from html import escape
from typing import NamedTuple

from models.money import usd_display
from models.statement import Flow

WIDTH_PX = 960
LABEL_PX = 250
NODE_PX = 14
PLOT_PX = 360
MIN_BAND_PX = 2.0
MIN_SLOT_PX = 30.0
GAP_PX = 14.0
TOP_PX = 44.0
BOTTOM_PX = 16.0
LABEL_CHARS = 28
BAND_LABEL_MIN_PX = 14.0
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1")

_LEFT_X = LABEL_PX
_RIGHT_X = WIDTH_PX - LABEL_PX - NODE_PX


class _Node(NamedTuple):
    name: str
    top_px: float
    height_px: float
    amount_usd: Decimal


def flow_chart_svg(flows: Sequence[Flow]) -> str:
    """An `<svg>` with one band per flow and a node per department and side."""
    if not flows:
        return _empty_chart()
    widths = _band_widths(flows)
    payers = _nodes(flows, widths, side="debit")
    payees = _nodes(flows, widths, side="credit")
    bottom = max(n.top_px + n.height_px for n in (*payers.values(), *payees.values()))
    height = bottom + BOTTOM_PX
    parts = [_open_svg(height, len(flows)), *_column_titles()]
    parts += _bands(flows, widths, payers, payees)
    parts += [
        _node(n, left=True, colour=_colour(payers, n.name)) for n in payers.values()
    ]
    parts += [_node(n, left=False, colour="#7f7f7f") for n in payees.values()]
    return "\n".join([*parts, "</svg>"])


def _band_widths(flows: Sequence[Flow]) -> list[float]:
    total = sum(flow.amount_usd for flow in flows)
    scale = PLOT_PX / float(total) if total > 0 else 0.0
    return [max(MIN_BAND_PX, float(flow.amount_usd) * scale) for flow in flows]


def _nodes(flows: Sequence[Flow], widths: list[float], side: str) -> dict[str, _Node]:
    """Stack one side's departments top to bottom, in name order."""
    heights: dict[str, float] = {}
    amounts: dict[str, Decimal] = {}
    for flow, width in zip(flows, widths, strict=True):
        name = flow.debit if side == "debit" else flow.credit
        heights[name] = heights.get(name, 0.0) + width
        amounts[name] = amounts.get(name, Decimal(0)) + flow.amount_usd
    nodes: dict[str, _Node] = {}
    top = TOP_PX
    for name in sorted(heights):
        nodes[name] = _Node(name, top, heights[name], amounts[name])
        top += max(heights[name], MIN_SLOT_PX) + GAP_PX
    return nodes


def _bands(
    flows: Sequence[Flow],
    widths: list[float],
    payers: dict[str, _Node],
    payees: dict[str, _Node],
) -> list[str]:
    starts = _band_centres(flows, widths, payers, side="debit")
    ends = _band_centres(flows, widths, payees, side="credit")
    return [
        _band(flow, widths[i], starts[i], ends[i], _colour(payers, flow.debit))
        for i, flow in enumerate(flows)
    ]


def _band_centres(
    flows: Sequence[Flow], widths: list[float], nodes: dict[str, _Node], side: str
) -> dict[int, float]:
    """Where each band meets its node on `side`, stacked in the other side's order."""

    def ends(i: int) -> tuple[str, str]:
        flow = flows[i]
        return (
            (flow.debit, flow.credit) if side == "debit" else (flow.credit, flow.debit)
        )

    cursor = {name: node.top_px for name, node in nodes.items()}
    centres: dict[int, float] = {}
    for i in sorted(range(len(flows)), key=ends):
        own = ends(i)[0]
        centres[i] = cursor[own] + widths[i] / 2
        cursor[own] += widths[i]
    return centres


def _band(flow: Flow, width: float, y0: float, y1: float, colour: str) -> str:
    x0, x1 = _LEFT_X + NODE_PX, _RIGHT_X
    xm = (x0 + x1) / 2
    amount = usd_display(flow.amount_usd)
    title = f"{flow.debit} pays {flow.credit}: {amount} USD"
    path = (
        f'<path class="flow" d="M{x0},{y0:.1f} C{xm},{y0:.1f} {xm},{y1:.1f} '
        f'{x1},{y1:.1f}" fill="none" stroke="{colour}" stroke-opacity="0.45" '
        f'stroke-width="{width:.1f}" data-debit="{_attr(flow.debit)}" '
        f'data-credit="{_attr(flow.credit)}" data-amount-usd="{amount}">'
        f"<title>{escape(title)}</title></path>"
    )
    if width < BAND_LABEL_MIN_PX:
        return path
    label = (
        f'<text class="band-label" x="{x0 + 6}" y="{y0:.1f}" '
        f'dominant-baseline="middle">{amount}</text>'
    )
    return path + label


def _node(node: _Node, *, left: bool, colour: str) -> str:
    """A department's bar, its name and, a line below, its amount on this side."""
    x = _LEFT_X if left else _RIGHT_X
    text_x = x - 8 if left else x + NODE_PX + 8
    anchor = "end" if left else "start"
    middle = node.top_px + node.height_px / 2
    return (
        f'<rect class="department" x="{x}" y="{node.top_px:.1f}" width="{NODE_PX}" '
        f'height="{node.height_px:.1f}" fill="{colour}"><title>{escape(node.name)}'
        f'</title></rect><text y="{middle - 7:.1f}" text-anchor="{anchor}" '
        f'dominant-baseline="middle"><tspan x="{text_x}">{escape(_short(node.name))}'
        f'</tspan><tspan x="{text_x}" dy="15" class="node-amount">'
        f"{usd_display(node.amount_usd)}</tspan></text>"
    )


def _open_svg(height: float, flows: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flow-chart" '
        f'viewBox="0 0 {WIDTH_PX} {height:.0f}" width="{WIDTH_PX}" '
        f'height="{height:.0f}" role="img" '
        f'aria-label="Chargeback flows between departments: {flows} flows" '
        'font-family="system-ui, sans-serif" font-size="13">'
    )


def _column_titles() -> list[str]:
    return [
        f'<text x="{_LEFT_X + NODE_PX}" y="20" text-anchor="end" '
        'font-weight="bold">pays (debit)</text>',
        f'<text x="{_RIGHT_X}" y="20" font-weight="bold">is paid (credit)</text>',
    ]


def _empty_chart() -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flow-chart" '
        f'viewBox="0 0 {WIDTH_PX} 60" width="{WIDTH_PX}" height="60" role="img" '
        'aria-label="No chargeback flows" font-family="system-ui, sans-serif">'
        f'<text x="{WIDTH_PX / 2}" y="34" text-anchor="middle">'
        "No chargebacks between departments in this period.</text></svg>"
    )


def _colour(payers: dict[str, _Node], name: str) -> str:
    return PALETTE[list(payers).index(name) % len(PALETTE)]


def _short(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


def _attr(text: str) -> str:
    return escape(text, quote=True)

"""Document analysis: one pass over a parsed document, linear in the document.

Every limit a document must meet (depth, aliases, directives, selections once
fragments are expanded) and the shape of its cost come out of one walk of the
syntax tree, before validation and long before execution. Each fragment
definition is walked once and its figures reused wherever it is spread: a
document of fragments that each spread the next one twice stands for 2^n
selections, and walking the expansion instead (as the old alias and depth
rules did) froze the server for 32 s on a 909-byte document. Here the figures
of such a document are products and sums of the per-fragment figures, so its
expanded size is known, and refused, after touching each definition once.

The walk does not rely on validation having run: unknown fields cost nothing,
unknown fragments are skipped, and a fragment that spreads itself (a cycle,
which validation then reports) adds nothing the second time round.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
)

from graph.cost import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    SLICING_ARGUMENTS,
    CostRules,
    FieldRule,
    Kind,
)


@dataclass(frozen=True, slots=True)
class Figures:
    """What a selection set stands for once every fragment in it is expanded."""

    depth: int = 0
    introspection_depth: int = 0
    selections: int = 0
    aliases: int = 0
    directives: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            max(self.depth, other.depth),
            max(self.introspection_depth, other.introspection_depth),
            self.selections + other.selections,
            self.aliases + other.aliases,
            self.directives + other.directives,
        )


@dataclass(frozen=True, slots=True)
class Size:
    """How many items a list stands for: a literal, a variable's value, or a default.

    ``argument`` names what the client wrote (``first``, ``ids``), for errors.
    """

    default: int
    argument: str | None = None
    literal: int | None = None
    variable: str | None = None
    # A list argument (``ids``): its number of elements.
    elements: bool = False
    # ``first``/``last``: the client's page size, which must be 1..100.
    page: bool = False


class PageSizeOutOfRange(Exception):
    def __init__(self, argument: str, value: int, path: str) -> None:
        super().__init__(f"'{argument}' must be between 1 and {MAX_PAGE_SIZE} (at {path}).")
        self.argument = argument
        self.value = value
        self.path = path


@dataclass(eq=False, slots=True)
class CostField:
    key: str
    name: str
    rule: FieldRule
    size: Size | None
    sub: CostSet | None
    # The type the field is selected on and the named type it returns ("" when the
    # document names no such field): for the cache's hints and tags (``graph.caching``).
    parent: str = ""
    returns: str = ""


@dataclass(eq=False, slots=True)
class CostSet:
    """The cost shape of one selection set; fragments are shared, not copied.

    ``members`` apply to every object the set is evaluated on (fields, and fragments
    on the same type); ``branches`` hold fragments on other types (a union's members,
    an interface's implementations), of which one object matches at most one.
    """

    members: list[CostField | CostSet] = field(default_factory=list)
    branches: dict[str, list[CostSet]] = field(default_factory=dict)
    _flat: dict[str, list[CostField]] | None = None
    _counted: tuple[_Counted, ...] | None = None
    # The requested cost of an operation whose sizes come from no variable (its root set).
    _constant: int | None = None

    def flat(self) -> dict[str, list[CostField]]:
        """Every field this set can put in a response object, by response key."""
        if self._flat is None:
            found: dict[str, list[CostField]] = {}
            seen: set[int] = set()
            self._collect(found, seen)
            self._flat = found
        return self._flat

    def _collect(self, found: dict[str, list[CostField]], seen: set[int]) -> None:
        if id(self) in seen:
            return
        seen.add(id(self))
        for member in self.members:
            if isinstance(member, CostSet):
                member._collect(found, seen)
            else:
                found.setdefault(member.key, []).append(member)
        for sets in self.branches.values():
            for branch in sets:
                branch._collect(found, seen)


@dataclass(frozen=True, slots=True)
class OperationFigures:
    node: OperationDefinitionNode
    name: str | None
    kind: OperationType
    figures: Figures
    cost: CostSet
    # Variables that decide a list's size: the cost is constant when there are none.
    size_variables: frozenset[str]
    root_fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DocumentFigures:
    operations: tuple[OperationFigures, ...]
    # The largest figures of any definition, spread or not: validation walks them all.
    largest: Figures
    operation_count: int
    # How often each fragment definition was walked: once, whatever the spreads.
    fragment_visits: Mapping[str, int]

    def operation(self, name: str | None) -> OperationFigures | None:
        if name is None:
            return self.operations[0] if len(self.operations) == 1 else None
        return next((op for op in self.operations if op.name == name), None)


@dataclass(slots=True)
class _Walked:
    figures: Figures
    cost: CostSet
    variables: frozenset[str]


_EMPTY = _Walked(Figures(), CostSet(), frozenset())


class _Walker:
    def __init__(self, rules: CostRules, document: DocumentNode) -> None:
        self._rules = rules
        self._schema = rules.schema
        self._fragments: dict[str, FragmentDefinitionNode] = {}
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                self._fragments.setdefault(definition.name.value, definition)
        self._done: dict[str, _Walked] = {}
        self._active: set[str] = set()
        self.visits: Counter[str] = Counter()

    def fragment(self, name: str) -> _Walked | None:
        """The figures of a fragment definition, walked on first use only."""
        walked = self._done.get(name)
        if walked is not None:
            return walked
        definition = self._fragments.get(name)
        if definition is None or name in self._active:
            return None  # unknown, or a cycle: validation reports both
        self._active.add(name)
        self.visits[name] += 1
        parent = self._schema.get_type(definition.type_condition.name.value)
        walked = self.selection_set(definition.selection_set, parent)
        own = _directives(definition.directives)
        if own:
            walked = _Walked(
                walked.figures + Figures(directives=own), walked.cost, walked.variables
            )
        self._active.discard(name)
        self._done[name] = walked
        return walked

    def fragment_names(self) -> Iterable[str]:
        return self._fragments.keys()

    def selection_set(self, node: SelectionSetNode, parent: GraphQLNamedType | None) -> _Walked:
        figures = Figures()
        cost = CostSet()
        variables: set[str] = set()
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                walked_field = self._field(selection, parent)
                figures = figures + walked_field[0]
                cost.members.append(walked_field[1])
                variables |= walked_field[2]
                continue
            if isinstance(selection, FragmentSpreadNode):
                walked = self.fragment(selection.name.value)
                if walked is None:
                    continue
                condition = self._fragments[selection.name.value].type_condition.name.value
            elif isinstance(selection, InlineFragmentNode):
                condition_type = (
                    self._schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                walked = self.selection_set(selection.selection_set, condition_type)
                condition = condition_type.name if condition_type else ""
            else:  # pragma: no cover - graphql-core has no other selection kind
                continue
            figures = (
                figures + walked.figures + Figures(directives=_directives(selection.directives))
            )
            variables |= walked.variables
            if parent is None or condition == parent.name or isinstance(parent, GraphQLObjectType):
                cost.members.append(walked.cost)
            else:
                cost.branches.setdefault(condition, []).append(walked.cost)
        return _Walked(figures, cost, frozenset(variables))

    def _field(
        self, node: FieldNode, parent: GraphQLNamedType | None
    ) -> tuple[Figures, CostField, frozenset[str]]:
        name = node.name.value
        rule, kind = self._rules.field(parent, name)
        introspective = rule.kind is Kind.INTROSPECTION or (
            parent is not None and parent.name.startswith("__")
        )
        child = self.selection_set(node.selection_set, kind) if node.selection_set else _EMPTY
        below = child.figures
        if introspective:
            depth, introspection_depth = 0, 1 + max(below.depth, below.introspection_depth)
        else:
            depth = 1 + below.depth
            introspection_depth = 1 + below.introspection_depth if below.introspection_depth else 0
        figures = Figures(
            depth,
            introspection_depth,
            1 + below.selections,
            (1 if node.alias else 0) + below.aliases,
            _directives(node.directives) + below.directives,
        )
        size = _size(node, rule)
        variables = set(child.variables)
        if size is not None and size.variable is not None:
            variables.add(size.variable)
        key = node.alias.value if node.alias else name
        sub = None if rule.kind is Kind.INTROSPECTION or not node.selection_set else child.cost
        cost_field = CostField(
            key, name, rule, size, sub, parent.name if parent else "", kind.name if kind else ""
        )
        return figures, cost_field, frozenset(variables)


def _directives(nodes: tuple[DirectiveNode, ...] | None) -> int:
    return len(nodes) if nodes else 0


def _argument(node: FieldNode, name: str) -> ValueNode | None:
    for argument in node.arguments or ():
        if argument.name.value == name:
            return argument.value
    return None


def _size(node: FieldNode, rule: FieldRule) -> Size | None:
    if rule.kind is Kind.CONNECTION:
        for name in SLICING_ARGUMENTS:
            value = _argument(node, name)
            if value is None or isinstance(value, NullValueNode):
                continue
            if isinstance(value, VariableNode):
                return Size(DEFAULT_PAGE_SIZE, name, variable=value.name.value, page=True)
            if isinstance(value, IntValueNode):
                return Size(DEFAULT_PAGE_SIZE, name, literal=int(value.value), page=True)
        return Size(DEFAULT_PAGE_SIZE)
    if rule.kind is Kind.LIST:
        if rule.sized_by is not None:
            value = _argument(node, rule.sized_by)
            if isinstance(value, VariableNode):
                return Size(MAX_PAGE_SIZE, rule.sized_by, variable=value.name.value, elements=True)
            if isinstance(value, ListValueNode):
                return Size(MAX_PAGE_SIZE, rule.sized_by, literal=len(value.values))
        return Size(MAX_PAGE_SIZE)
    return None


def analyse(rules: CostRules, document: DocumentNode) -> DocumentFigures:
    """Walk the document once: the figures of every operation and fragment."""
    walker = _Walker(rules, document)
    schema = rules.schema
    operations: list[OperationFigures] = []
    largest = Figures()
    count = 0
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        count += 1
        root = _root(schema, definition.operation)
        walked = walker.selection_set(definition.selection_set, root)
        own = _directives(definition.directives) + sum(
            _directives(v.directives) for v in definition.variable_definitions or ()
        )
        figures = walked.figures + Figures(directives=own)
        largest = _largest(largest, figures)
        operations.append(
            OperationFigures(
                node=definition,
                name=definition.name.value if definition.name else None,
                kind=definition.operation,
                figures=figures,
                cost=walked.cost,
                size_variables=walked.variables,
                root_fields=tuple(
                    s.name.value
                    for s in definition.selection_set.selections
                    if isinstance(s, FieldNode)
                ),
            )
        )
    for name in list(walker.fragment_names()):
        walked_fragment = walker.fragment(name)
        if walked_fragment is not None:
            largest = _largest(largest, walked_fragment.figures)
    return DocumentFigures(tuple(operations), largest, count, dict(walker.visits))


def _largest(a: Figures, b: Figures) -> Figures:
    return Figures(
        max(a.depth, b.depth),
        max(a.introspection_depth, b.introspection_depth),
        max(a.selections, b.selections),
        max(a.aliases, b.aliases),
        max(a.directives, b.directives),
    )


def _root(schema: GraphQLSchema, kind: OperationType) -> GraphQLObjectType | None:
    if kind is OperationType.QUERY:
        return schema.query_type
    if kind is OperationType.MUTATION:
        return schema.mutation_type
    return schema.subscription_type


# --- cost, with the variables of one request ------------------------------------------------


class CostCalculator:
    """The requested cost of an operation for one request's (coerced) variables.

    Each shared set is evaluated once per (set, inherited size), so the work is
    linear in the document, not in its expansion.
    """

    def __init__(self, variables: Mapping[str, Any]) -> None:
        self._variables = variables
        self._memo: dict[tuple[int, int | None], int] = {}

    def set_cost(self, cost: CostSet, inherited: int | None = None, path: str = "") -> int:
        key = (id(cost), inherited)
        found = self._memo.get(key)
        if found is not None:
            return found
        total = 0
        for member in cost.members:
            if isinstance(member, CostSet):
                total += self.set_cost(member, inherited, path)
            else:
                total += self.field_cost(member, inherited, path)
        if cost.branches:
            total += max(
                sum(self.set_cost(branch, inherited, path) for branch in sets)
                for sets in cost.branches.values()
            )
        self._memo[key] = total
        return total

    def field_cost(self, item: CostField, inherited: int | None, path: str) -> int:
        rule = item.rule
        here = f"{path}.{item.key}" if path else item.key
        sub = item.sub
        if rule.kind is Kind.CONNECTION:
            size = self.size(item.size, here)
            return rule.own + (self.set_cost(sub, size, here) if sub else 0)
        if rule.kind is Kind.ITEMS:
            count = DEFAULT_PAGE_SIZE if inherited is None else inherited
            return rule.own + count * (rule.item + (self.set_cost(sub, None, here) if sub else 0))
        if rule.kind is Kind.LIST:
            count = self.size(item.size, here)
            return rule.own + count * (rule.item + (self.set_cost(sub, None, here) if sub else 0))
        if rule.kind is Kind.OBJECT and sub is not None:
            return rule.own + self.set_cost(sub, None, here)
        return rule.own

    def size(self, size: Size | None, path: str) -> int:
        if size is None:
            return 1
        value: Any = size.literal
        if size.variable is not None:
            value = self._variables.get(size.variable)
        if size.elements:
            return len(value) if isinstance(value, list) else size.default
        if not isinstance(value, int) or isinstance(value, bool):
            return size.default
        if size.page and not 1 <= value <= MAX_PAGE_SIZE:
            raise PageSizeOutOfRange(size.argument or "first", value, path)
        return max(value, 0)


def requested_cost(operation: OperationFigures, variables: Mapping[str, Any]) -> int:
    """What the operation may cost at most, before anything runs.

    Computed once per operation when no list's size comes from a variable.
    """
    root = operation.cost
    if root._constant is not None:
        return root._constant
    cost = CostCalculator(variables).set_cost(root)
    if not operation.size_variables:
        root._constant = cost
    return cost


class RequestedCosts:
    """Requested costs, each computed once for an operation no variable sizes (its cost is
    then the same for every request): most operations, on every request."""

    def __init__(self, entries: int = 1_024) -> None:
        self._entries = entries
        # Keyed by identity, holding the operation so that the id stays its own.
        self._fixed: OrderedDict[int, tuple[OperationFigures, int]] = OrderedDict()

    def requested(self, operation: OperationFigures, variables: Mapping[str, Any]) -> int:
        if operation.size_variables:
            return requested_cost(operation, variables)
        found = self._fixed.get(id(operation))
        if found is not None:
            return found[1]
        cost = requested_cost(operation, variables)
        self._fixed[id(operation)] = (operation, cost)
        if len(self._fixed) > self._entries:
            self._fixed.popitem(last=False)
        return cost


def actual_cost(operation: OperationFigures, data: Any) -> int:
    """What the operation's response really holds, by the same formula.

    Lists count the items returned, not the items asked for; a null object
    costs nothing. Fields that several fragments select under one response key
    are merged, as the response merges them.
    """
    if not isinstance(data, dict):
        return 0
    return _actual((operation.cost,), data)


@dataclass(frozen=True, slots=True)
class _Counted:
    """A response key that adds to the actual cost, with what its fields add."""

    key: str
    own: int
    listed: bool
    item: int
    # The merged selections below it, or None when nothing below it costs anything.
    subs: tuple[CostSet, ...] | None


def _counted(sets: tuple[CostSet, ...]) -> tuple[_Counted, ...]:
    """The keys that cost something under these sets, merged as the response merges them.

    Kept on the set when there is one (the usual case), so that a response's
    thousands of objects are each counted in a few dictionary lookups; leaves
    that cost nothing are dropped here, once, not skipped per object.
    """
    if len(sets) == 1 and sets[0]._counted is not None:
        return sets[0]._counted
    candidates: dict[str, list[CostField]] = {}
    for cost in sets:
        for key, fields in cost.flat().items():
            candidates.setdefault(key, []).extend(fields)
    counted: list[_Counted] = []
    for key, fields in candidates.items():
        listed = fields[0].rule.is_list
        subs = tuple(f.sub for f in fields if f.sub is not None)
        below = subs if subs and _counted(subs) else None
        entry = _Counted(
            key,
            max(f.rule.own for f in fields),
            listed,
            max(f.rule.item for f in fields),
            below,
        )
        if entry.own or (listed and entry.item) or below is not None:
            counted.append(entry)
    found = tuple(counted)
    if len(sets) == 1:
        sets[0]._counted = found
    return found


def _actual(sets: tuple[CostSet, ...], data: dict[str, Any]) -> int:
    total = 0
    for entry in _counted(sets):
        value = data.get(entry.key)
        if value is None:
            continue
        subs = entry.subs
        if entry.listed and isinstance(value, list):
            if subs is None:
                total += entry.own + entry.item * sum(1 for e in value if e is not None)
            else:
                total += entry.own + sum(
                    entry.item + (_actual(subs, e) if isinstance(e, dict) else 0)
                    for e in value
                    if e is not None
                )
        elif subs is not None and isinstance(value, dict):
            total += entry.own + _actual(subs, value)
        else:
            total += entry.own
    return total


def explain(operation: OperationFigures, variables: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The cost of every field of the expanded operation, by response path.

    ``cost`` is what one occurrence of the field costs with its selection;
    ``items`` is how many items a list stands for. Only called on operations
    within the selection limit, so its output is bounded by that limit.
    """
    calculator = CostCalculator(variables)
    rows: list[dict[str, Any]] = []

    def walk(cost: CostSet, inherited: int | None, path: str) -> None:
        for member in cost.members:
            if isinstance(member, CostSet):
                walk(member, inherited, path)
            else:
                visit(member, inherited, path)
        for condition, sets in cost.branches.items():
            for branch in sets:
                walk(branch, inherited, f"{path}(on {condition})" if path else f"(on {condition})")

    def visit(item: CostField, inherited: int | None, path: str) -> None:
        here = f"{path}.{item.key}" if path else item.key
        row: dict[str, Any] = {
            "path": here,
            "kind": item.rule.kind.value,
            "cost": calculator.field_cost(item, inherited, path),
        }
        size: int | None = None
        if item.rule.kind is Kind.CONNECTION:
            size = calculator.size(item.size, here)
        elif item.rule.kind is Kind.ITEMS:
            row["items"] = DEFAULT_PAGE_SIZE if inherited is None else inherited
        elif item.rule.kind is Kind.LIST:
            row["items"] = calculator.size(item.size, here)
        if size is not None:
            row["items"] = size
        rows.append(row)
        if item.sub is not None:
            walk(item.sub, size, here)

    walk(operation.cost, None, "")
    return rows

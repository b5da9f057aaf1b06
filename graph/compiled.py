"""The compiled read path: a query operation planned against the read model.

A validated query whose every field is in the read model (``domain/readmodel``)
is planned once per document (``Planner``): fragments are expanded and fields
merged by response key as GraphQL's CollectFields does, each field is mapped
to what the read model says about it, and every argument that varies by
request gets a numbered slot. Per request, ``bind`` fills the slots through the
very functions the resolvers use to check their arguments (cursors, ids,
filters, page sizes), so an argument the resolver path would refuse makes the
request fall back to it, and the client gets the resolver path's error.

Anything else falls back too: mutations, fields outside the read model,
``@skip``/``@include`` decided by a variable.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
)
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.types.arguments import convert_arguments

from domain.cursors import CursorKey
from domain.policy import POSITIONS, PRIVATE_FIELDS, Actor
from domain.readmodel import TYPES, Children, ObjectType, Private, Reference, market_sort
from domain.readplan import (
    Bound,
    Connection,
    ConnectionOutput,
    Cursor,
    Edges,
    Leaf,
    Node,
    NodeId,
    Nodes,
    NotCompilable,
    One,
    Output,
    PageArgs,
    PageInfo,
    PageInfoField,
    Plan,
    Root,
    RootKind,
    Selection,
    SlotValue,
    TotalCount,
    Typename,
    Viewer,
)
from graph.analysis import OperationFigures
from graph.documents import Prepared
from graph.errors import ApiError, bad_input
from graph.ids import expect_id
from graph.markets.queries import market_listing
from graph.node_queries import MAX_IDS, parse_node_id
from graph.pagination import page_request

PLAN_CACHE_SIZE = 1_024
_RULES = (PRIVATE_FIELDS, POSITIONS)
_PAGE_INFO = {field.value: field for field in PageInfoField}
_ANONYMOUS = Viewer(user_id=None, sees_all=frozenset())

Binder = Callable[[VariableValues], SlotValue]


@dataclass(frozen=True, slots=True)
class CompiledOperation:
    plan: Plan
    binders: tuple[Binder, ...]


# A document's identity and an operation's name; the plan (None: not compiled) with the
# document it was made from.
_PlanKey = tuple[int, str | None]
_Planned = tuple[DocumentNode, CompiledOperation | None]


class Planner:
    """Plans operations of one schema, keeping the plan (or the verdict) per document.

    Plans of recent documents are kept up to ``size``, least recently used first out;
    plans of trusted documents are built when the document is registered (``pin``) and
    kept for as long as the process runs, so no traffic of other documents evicts them.
    """

    def __init__(
        self, schema: strawberry.Schema, signing: CursorKey, size: int = PLAN_CACHE_SIZE
    ) -> None:
        self._strawberry = schema
        self._schema: GraphQLSchema = schema._schema
        # Cursors in arguments are checked against it, as the resolvers check them.
        self._signing = signing
        self._size = size
        # Keyed by the document's identity: each entry holds its document, so that no other
        # document can have the id while the entry stands.
        self._cache: OrderedDict[_PlanKey, _Planned] = OrderedDict()
        self._pinned: dict[_PlanKey, _Planned] = {}
        # Plans built so far (what the caches above spare).
        self.built = 0

    def __len__(self) -> int:
        """Plans kept for recent documents (pinned ones apart)."""
        return len(self._cache)

    def plan(self, document: DocumentNode, operation: OperationFigures) -> CompiledOperation | None:
        """The compiled form of the operation, or None when the resolver path must serve it."""
        key = (id(document), operation.name)
        pinned = self._pinned.get(key)
        if pinned is not None and pinned[0] is document:
            return pinned[1]
        found = self._cache.get(key)
        if found is not None and found[0] is document:
            self._cache.move_to_end(key)
            return found[1]
        compiled = self._build(document, operation)
        self._cache[key] = (document, compiled)
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return compiled

    def pin(self, prepared: Prepared) -> None:
        """Plan every operation of a registered document now, and keep the plans.

        The registry keeps the document for the life of the process, and registered
        documents are few (an operator registers them), so the pinned plans are bounded
        by what is registered; an APQ text is not pinned, since anyone may register one.
        """
        document = prepared.document
        for operation in prepared.figures.operations:
            key = (id(document), operation.name)
            if key in self._pinned:
                continue
            # Sent as text before it was registered: its plan is already made.
            found = self._cache.pop(key, None)
            if found is None or found[0] is not document:
                found = (document, self._build(document, operation))
            self._pinned[key] = found

    def _build(
        self, document: DocumentNode, operation: OperationFigures
    ) -> CompiledOperation | None:
        self.built += 1
        try:
            builder = _Builder(self._strawberry, self._schema, self._signing, document)
            return builder.operation(operation)
        except NotCompilable:
            return None


def bind(
    compiled: CompiledOperation, variables: VariableValues, actor: Actor | None
) -> Bound | None:
    """The slots of one request, or None when an argument is one the resolver path refuses."""
    try:
        slots = tuple(binder(variables) for binder in compiled.binders)
    except (ApiError, NotCompilable):
        return None
    if actor is None:
        return Bound(slots, _ANONYMOUS)
    viewer = Viewer(
        user_id=actor.user_id,
        sees_all=frozenset(rule.name for rule in _RULES if rule.sees_all(actor)),
    )
    return Bound(slots, viewer)


class _Builder:
    def __init__(
        self,
        schema: strawberry.Schema,
        graphql: GraphQLSchema,
        signing: CursorKey,
        document: DocumentNode,
    ) -> None:
        self._strawberry = schema
        self._schema = graphql
        self._signing = signing
        self._fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._binders: list[Binder] = []

    def operation(self, operation: OperationFigures) -> CompiledOperation:
        if operation.kind is not OperationType.QUERY:
            raise NotCompilable("only queries are compiled")
        query = self._schema.query_type
        assert query is not None
        roots = tuple(
            self._root(key, nodes, query)
            for key, nodes in self._collect([operation.node.selection_set], query).items()
        )
        return CompiledOperation(Plan(roots, len(self._binders)), tuple(self._binders))

    # --- fields, as CollectFields gathers them ------------------------------------------------

    def _collect(
        self, sets: Sequence[SelectionSetNode], kind: GraphQLObjectType
    ) -> dict[str, list[FieldNode]]:
        fields: dict[str, list[FieldNode]] = {}
        for selection_set in sets:
            self._gather(selection_set, kind, fields)
        return fields

    def _gather(
        self,
        selection_set: SelectionSetNode,
        kind: GraphQLObjectType,
        into: dict[str, list[FieldNode]],
    ) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                into.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or self._applies(condition.name.value, kind):
                    self._gather(selection.selection_set, kind, into)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self._fragments.get(selection.name.value)
                if fragment is not None and self._applies(fragment.type_condition.name.value, kind):
                    self._gather(fragment.selection_set, kind, into)

    def _applies(self, condition: str, kind: GraphQLObjectType) -> bool:
        if condition == kind.name:
            return True
        abstract = self._schema.get_type(condition)
        return abstract is not None and self._schema.is_sub_type(abstract, kind)  # type: ignore[arg-type]

    @staticmethod
    def _included(selection: FieldNode | InlineFragmentNode | FragmentSpreadNode | Any) -> bool:
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                raise NotCompilable(f"directive @{name}")
            condition = next(
                (a.value for a in directive.arguments or () if a.name.value == "if"), None
            )
            if condition is None or isinstance(condition, VariableNode):
                raise NotCompilable("@skip/@include decided by a variable")
            value = getattr(condition, "value", None)
            if value is not (name == "include"):
                return False
        return True

    @staticmethod
    def _subsets(nodes: Sequence[FieldNode]) -> list[SelectionSetNode]:
        return [node.selection_set for node in nodes if node.selection_set is not None]

    def _field(self, kind: GraphQLObjectType, name: str) -> tuple[GraphQLField, str]:
        field = kind.fields.get(name)
        if field is None:
            raise NotCompilable(f"{kind.name}.{name}")
        definition = (field.extensions or {}).get("strawberry-definition")
        python_name = getattr(definition, "python_name", None)
        if not isinstance(python_name, str):
            raise NotCompilable(f"{kind.name}.{name} has no Python name")
        return field, python_name

    @staticmethod
    def _object_type(field: GraphQLField) -> GraphQLObjectType:
        kind: Any = field.type
        while hasattr(kind, "of_type"):
            kind = kind.of_type
        if not isinstance(kind, GraphQLObjectType):
            raise NotCompilable(f"{kind} is not an object type")
        return kind

    def _slot(self, binder: Binder, node: FieldNode) -> int:
        """Number the slot; arguments that use no variable are bound once, not per request."""
        self._binders.append(binder if _uses_variables(node) else _once(binder))
        return len(self._binders) - 1

    def _arguments(
        self, field: GraphQLField, node: FieldNode
    ) -> Callable[[VariableValues], dict[str, Any]]:
        """The field's arguments for one request, converted as Strawberry converts them."""
        definition = (field.extensions or {}).get("strawberry-definition")
        arguments = list(getattr(definition, "arguments", ()) or ())
        registry = self._strawberry.schema_converter.scalar_registry
        config = self._strawberry.config

        def read(variables: VariableValues) -> dict[str, Any]:
            raw = get_argument_values(field, node, variables)
            return convert_arguments(raw, arguments, scalar_registry=registry, config=config)

        return read

    def _argument(
        self, field: GraphQLField, node: FieldNode, name: str
    ) -> Callable[[VariableValues], Any]:
        """One argument's value for a request. An argument that is just a variable of a
        plain type (an ``ID!``) is the variable's coerced value, read directly."""
        value = next((a.value for a in node.arguments or () if a.name.value == name), None)
        if isinstance(value, VariableNode) and _plain(field, name):
            variable = value.name.value
            return lambda variables: variables.coerced.get(variable)
        arguments = self._arguments(field, node)
        return lambda variables: arguments(variables)[name]

    # --- roots -------------------------------------------------------------------------------

    def _root(self, key: str, nodes: list[FieldNode], query: GraphQLObjectType) -> Root:
        name = nodes[0].name.value
        if name == "__typename":
            raise NotCompilable("__typename at the root")
        field, _ = self._field(query, name)
        subsets = self._subsets(nodes)
        if name in ("market", "user"):
            model = TYPES["Market" if name == "market" else "User"]
            given = self._argument(field, nodes[0], "id")
            type_name = model.name
            slot = self._slot(lambda v: expect_id(given(v), type_name, "id"), nodes[0])
            return Root(
                key,
                RootKind.BY_ID,
                slot,
                selection=self._selection(model, self._object_type(field), subsets),
            )
        if name == "viewer":
            user = TYPES["User"]
            return Root(
                key,
                RootKind.VIEWER,
                selection=self._selection(user, self._object_type(field), subsets),
            )
        if name == "markets":
            arguments = self._arguments(field, nodes[0])
            signing = self._signing

            def page(variables: VariableValues) -> SlotValue:
                listing = market_listing(**arguments(variables), signing=signing)
                request = listing.request
                return PageArgs(
                    sort=market_sort(listing.order),
                    size=request.size,
                    backward=request.backward,
                    cursor=request.before if request.backward else request.after,
                    filter=listing.criteria,
                )

            slot = self._slot(page, nodes[0])
            connection = self._connection(
                key, TYPES["Market"], None, self._object_type(field), subsets, slot
            )
            return Root(key, RootKind.LIST, slot, connection=connection)
        if name in ("node", "nodes"):
            given = self._argument(field, nodes[0], "id" if name == "node" else "ids")
            branches = {
                model.name: self._selection(model, self._concrete(model.name), subsets)
                for model in TYPES.values()
            }
            if name == "node":
                slot = self._slot(lambda v: _node_id(given(v), "id"), nodes[0])
                return Root(key, RootKind.NODE, slot, branches=branches)
            slot = self._slot(lambda v: _node_ids(given(v)), nodes[0])
            return Root(key, RootKind.NODES, slot, branches=branches)
        raise NotCompilable(f"Query.{name}")

    def _concrete(self, name: str) -> GraphQLObjectType:
        kind = self._schema.get_type(name)
        assert isinstance(kind, GraphQLObjectType)
        return kind

    # --- objects and pages -------------------------------------------------------------------

    def _selection(
        self, model: ObjectType, kind: GraphQLObjectType, subsets: Sequence[SelectionSetNode]
    ) -> Selection:
        outputs: list[Output] = []
        for key, nodes in self._collect(subsets, kind).items():
            name = nodes[0].name.value
            if name == "__typename":
                outputs.append(Typename(key, kind.name))
                continue
            field, python_name = self._field(kind, name)
            declared = model.fields.get(python_name)
            if declared is None:
                raise NotCompilable(f"{kind.name}.{name} is outside the read model")
            if isinstance(declared, Reference):
                target = TYPES[declared.target]
                outputs.append(
                    One(
                        key,
                        declared,
                        self._selection(target, self._object_type(field), self._subsets(nodes)),
                    )
                )
            elif isinstance(declared, Children):
                arguments = self._arguments(field, nodes[0])
                sort = declared.sort
                signing = self._signing

                def page(
                    variables: VariableValues,
                    read: Any = arguments,
                    sort: Any = sort,
                    signing: CursorKey = signing,
                ) -> SlotValue:
                    given = read(variables)
                    request = page_request(
                        sort.name,
                        sort.kind,
                        given.get("first"),
                        given.get("after"),
                        signing=signing,
                    )
                    return PageArgs(sort=sort, size=request.size, cursor=request.after)

                slot = self._slot(page, nodes[0])
                outputs.append(
                    self._connection(
                        key,
                        TYPES[declared.target],
                        declared,
                        self._object_type(field),
                        self._subsets(nodes),
                        slot,
                    )
                )
            elif isinstance(declared, Private) or not isinstance(declared, Reference | Children):
                if nodes[0].selection_set is not None:
                    raise NotCompilable(f"{kind.name}.{name} has a selection")
                outputs.append(Leaf(key, declared))
        return Selection(model, tuple(outputs))

    def _connection(
        self,
        key: str,
        target: ObjectType,
        children: Children | None,
        kind: GraphQLObjectType,
        subsets: Sequence[SelectionSetNode],
        slot: int,
    ) -> Connection:
        outputs: list[ConnectionOutput] = []
        for output_key, nodes in self._collect(subsets, kind).items():
            name = nodes[0].name.value
            inner = self._subsets(nodes)
            if name == "__typename":
                outputs.append(Typename(output_key, kind.name))
            elif name == "totalCount":
                outputs.append(TotalCount(output_key))
            elif name == "nodes":
                node_type = self._object_type(kind.fields["nodes"])
                outputs.append(Nodes(output_key, self._selection(target, node_type, inner)))
            elif name == "edges":
                outputs.append(
                    Edges(
                        output_key,
                        self._edge(target, self._object_type(kind.fields["edges"]), inner),
                    )
                )
            elif name == "pageInfo":
                info_type = self._object_type(kind.fields["pageInfo"])
                info: list[tuple[str, PageInfoField] | Typename] = []
                for info_key, info_nodes in self._collect(inner, info_type).items():
                    info_name = info_nodes[0].name.value
                    if info_name == "__typename":
                        info.append(Typename(info_key, info_type.name))
                    else:
                        info.append((info_key, _PAGE_INFO[info_name]))
                outputs.append(PageInfo(output_key, tuple(info)))
            else:
                raise NotCompilable(f"{kind.name}.{name}")
        return Connection(key, target, children, tuple(outputs), slot)

    def _edge(
        self, target: ObjectType, kind: GraphQLObjectType, subsets: Sequence[SelectionSetNode]
    ) -> tuple[Cursor | Node | Typename, ...]:
        parts: list[Cursor | Node | Typename] = []
        for key, nodes in self._collect(subsets, kind).items():
            name = nodes[0].name.value
            if name == "__typename":
                parts.append(Typename(key, kind.name))
            elif name == "cursor":
                parts.append(Cursor(key))
            elif name == "node":
                node_type = self._object_type(kind.fields["node"])
                parts.append(Node(key, self._selection(target, node_type, self._subsets(nodes))))
            else:
                raise NotCompilable(f"{kind.name}.{name}")
        return tuple(parts)


def _plain(field: GraphQLField, name: str) -> bool:
    """Whether the argument's type is ID, String or a list of them: what Strawberry passes
    to the resolver is then the coerced value itself."""
    kind: Any = field.args[name].type
    while hasattr(kind, "of_type"):
        kind = kind.of_type
    return getattr(kind, "name", None) in ("ID", "String")


def _uses_variables(node: FieldNode) -> bool:
    """Whether any argument of the field refers to a variable, however deep."""
    pending: list[Any] = [argument.value for argument in node.arguments or ()]
    while pending:
        value = pending.pop()
        if isinstance(value, VariableNode):
            return True
        pending.extend(getattr(value, "values", None) or ())
        pending.extend(f.value for f in getattr(value, "fields", None) or ())
    return False


def _once(binder: Binder) -> Binder:
    """A binder of literal arguments: its value is the same every time, so it is kept.

    A refusal is not kept (it is rare, and re-raising one exception object would
    grow its traceback with every request).
    """
    known: list[SlotValue] = []

    def bound(variables: VariableValues) -> SlotValue:
        if not known:
            known.append(binder(variables))
        return known[0]

    return bound


def _node_id(value: str, argument: str) -> NodeId:
    type_name, ident = parse_node_id(value, argument)
    if type_name not in TYPES:
        # An object outside the read model (a job): the resolvers fetch it.
        raise NotCompilable(f"a {type_name} id")
    return NodeId(type_name, ident)


def _node_ids(values: Sequence[str]) -> SlotValue:
    if len(values) > MAX_IDS:
        raise bad_input(f"At most {MAX_IDS} ids at once.", "ids")
    return tuple(_node_id(value, "ids") for value in values)

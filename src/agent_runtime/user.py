"""The authenticated user: what an `@auth.authenticate` handler returned, made into one shape
(LangGraph's `BaseUser`: attributes and mapping access both), and its JSON form, which a run
stores in its config so that its graph sees the same user after a restart. Shared by the
server (which makes users) and the run executor (which hands them to graphs); no IO here."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from agent_runtime.schema import Json

USER_KEY = "langgraph_auth_user"
USER_ID_KEY = "langgraph_auth_user_id"
PERMISSIONS_KEY = "langgraph_auth_permissions"
AUTH_KEYS = (USER_KEY, USER_ID_KEY, PERMISSIONS_KEY)
"""The `configurable` keys the server sets for a run; a request never sets them."""
_CORE = ("identity", "display_name", "is_authenticated", "permissions")


class UserShapeError(TypeError):
    """An authenticate handler returned something that is not a user."""


class AuthUser:
    """A user as LangGraph hands it to authorization handlers and graphs: `user.identity`
    and `user["identity"]`, `user.get("github_token")`, and every extra field the
    authenticate handler returned."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self._fields = dict(fields)

    @property
    def identity(self) -> str:
        return str(self._fields["identity"])

    @property
    def display_name(self) -> str:
        return str(self._fields.get("display_name") or self.identity)

    @property
    def is_authenticated(self) -> bool:
        return bool(self._fields.get("is_authenticated", True))

    @property
    def permissions(self) -> Sequence[str]:
        return tuple(self._fields.get("permissions") or ())

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __contains__(self, key: object) -> bool:
        return key in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __getattr__(self, name: str) -> Any:
        # Extra fields as attributes too (`user.org_id`), as LangGraph's user proxy allows.
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, key: str, default: Any = None) -> Any:
        return self._fields.get(key, default)

    def keys(self) -> Any:
        return self._fields.keys()

    def dict(self) -> dict[str, Any]:
        return dict(self._fields)

    def to_json(self) -> Json:
        """The fields that survive JSON; a value that does not is left out, with a note in
        its place rather than a failure (a handler may return a client object)."""
        out: Json = {}
        for key, value in self._fields.items():
            out[key] = _jsonable(value)
        return out

    def model_dump(self, mode: str = "json") -> Json:
        """The JSON form, under the name our encoder (and pydantic's users) look for."""
        return self.to_json()

    def __repr__(self) -> str:
        return f"AuthUser(identity={self.identity!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AuthUser) and other._fields == self._fields

    __hash__ = None  # type: ignore[assignment]


def make_user(result: Any) -> AuthUser:
    """The user an authenticate handler's result names: a string (the identity), a mapping
    with `identity`, or an object with an `identity` attribute.

    Raises:
        UserShapeError: the result is none of these.
    """
    if isinstance(result, AuthUser):
        return result
    if isinstance(result, str):
        if not result:
            raise UserShapeError("the authenticate handler returned an empty identity")
        return AuthUser({"identity": result, "display_name": result, **_DEFAULTS})
    if isinstance(result, Mapping):
        fields = dict(result)
    elif hasattr(result, "identity"):
        fields = {
            name: getattr(result, name) for name in _CORE if getattr(result, name, None) is not None
        }
        if hasattr(result, "__dict__"):
            fields = {**vars(result), **fields}
    else:
        raise UserShapeError(
            f"the authenticate handler returned {type(result).__name__}; return a string "
            "(the user id), a dict with an identity, or an object with an identity attribute"
        )
    identity = fields.get("identity")
    if not isinstance(identity, str) or not identity:
        raise UserShapeError("the authenticate handler returned a user without a string identity")
    permissions = fields.get("permissions") or []
    if isinstance(permissions, str) or not all(isinstance(p, str) for p in permissions):
        raise UserShapeError("the authenticate handler returned permissions that are not strings")
    fields["permissions"] = list(permissions)
    fields.setdefault("display_name", identity)
    fields.setdefault("is_authenticated", True)
    return AuthUser(fields)


def studio_user() -> AuthUser:
    """LangGraph Studio's user, as `langgraph dev` makes it from `x-auth-scheme: langsmith`."""
    return AuthUser(
        {
            "kind": "StudioUser",
            "identity": "langgraph-studio-user",
            "display_name": "langgraph-studio-user",
            "is_authenticated": True,
            "permissions": [],
        }
    )


def without_auth_keys(configurable: Mapping[str, Any]) -> dict[str, Any]:
    """`configurable` less the keys only the server sets."""
    return {k: v for k, v in configurable.items() if k not in AUTH_KEYS}


def run_configurable(user: AuthUser) -> Json:
    """The `configurable` keys a run of this user stores (JSON) for its graph."""
    return {
        USER_KEY: user.to_json(),
        USER_ID_KEY: user.identity,
        PERMISSIONS_KEY: list(user.permissions),
    }


_DEFAULTS: Json = {"is_authenticated": True, "permissions": []}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return repr(value)

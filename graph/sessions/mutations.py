"""Sessions: signing in, refreshing, signing out, changing the password."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

import strawberry
from strawberry.types import Info

from domain.commands import ChangePassword, SignIn
from domain.policy import Actor
from domain.services.sessions import Session
from graph.context import Context
from graph.errors import (
    InvalidCredentialsError,
    InvalidTokenError,
    ValidationError,
)
from graph.outcomes import outcome
from graph.permissions import signed_in
from graph.users.types import UserType


@strawberry.type(description="Tokens of a session.")
class SessionTokens:
    access_token: str = strawberry.field(
        description="A short-lived access token (JWT). Send it as `Authorization: Bearer <token>`."
    )
    token_type: str = strawberry.field(description="Always `Bearer`.")
    expires_at: datetime = strawberry.field(description="When the access token stops working.")
    refresh_token: str = strawberry.field(
        description="Single use: spend it with `refreshSession` for new tokens. Keep it secret."
    )
    refresh_token_expires_at: datetime = strawberry.field(
        description="When the refresh token stops working if unused."
    )
    user: UserType = strawberry.field(description="The signed-in user.")

    @classmethod
    def of(cls, session: Session, context: Context) -> Self:
        """The result for a session this request just opened; it now acts as that user."""
        context.signed_in_as(
            Actor(user_id=session.user.id, role=session.user.role, session_id=session.session_id)
        )
        return cls(
            access_token=session.access.token,
            token_type="Bearer",
            expires_at=session.access.expires_at,
            refresh_token=session.refresh_token,
            refresh_token_expires_at=session.refresh_expires_at,
            user=UserType.from_entity(session.user),
        )


@strawberry.input(description="Credentials to sign in with.")
class SignInInput:
    email: str = strawberry.field(description="The account's email.")
    password: str = strawberry.field(description="The account's password.")


@strawberry.type(description="Signed in: a new session.")
class SignInSuccess(SessionTokens):
    pass


SignInResult = Annotated[
    SignInSuccess | InvalidCredentialsError,
    strawberry.union(
        "SignInResult",
        description="The outcome of `signIn`. Too many failures give a top-level RATE_LIMITED.",
    ),
]


@strawberry.input(description="The refresh token to spend.")
class RefreshSessionInput:
    refresh_token: str = strawberry.field(description="The latest refresh token of the session.")


@strawberry.type(description="New tokens; the refresh token that was sent is now spent.")
class RefreshSessionSuccess(SessionTokens):
    pass


RefreshSessionResult = Annotated[
    RefreshSessionSuccess | InvalidTokenError,
    strawberry.union("RefreshSessionResult", description="The outcome of `refreshSession`."),
]


@strawberry.type(description="The session (or sessions) ended.")
class SignOutSuccess:
    signed_out: bool = strawberry.field(description="Always true.")


@strawberry.input(description="The current and the new password.")
class ChangePasswordInput:
    current_password: str = strawberry.field(description="The password in use now.")
    new_password: str = strawberry.field(description="8 to 1024 characters.")


@strawberry.type(description="The password changed; every other session has ended.")
class ChangePasswordSuccess:
    signed_out_elsewhere: bool = strawberry.field(description="Always true.")


ChangePasswordResult = Annotated[
    ChangePasswordSuccess | ValidationError | InvalidCredentialsError,
    strawberry.union("ChangePasswordResult", description="The outcome of `changePassword`."),
]


@strawberry.type
class SessionMutations:
    @strawberry.mutation(
        description="Exchange an email and password for a session (access and refresh tokens)."
        " Failed attempts are limited (by default) to 5 per account from one client address"
        " and 20 per client address in 5 minutes, and 100 per account an hour in all."
    )
    async def sign_in(
        self,
        info: Info[Context, None],
        input: Annotated[SignInInput, strawberry.argument(description="The credentials.")],
    ) -> SignInResult | None:
        command = SignIn(
            email=input.email, password=input.password, client_ip=info.context.client_ip
        )
        return await outcome(
            lambda: info.context.services.sessions.sign_in(command),
            lambda session: SignInSuccess.of(session, info.context),
        )

    @strawberry.mutation(
        description="Spend a refresh token for new tokens. The same token sent again within"
        " 10 seconds (another tab) gets new tokens of the same session; reusing a spent"
        " refresh token later ends the whole session for everyone holding it."
    )
    async def refresh_session(
        self,
        info: Info[Context, None],
        input: Annotated[RefreshSessionInput, strawberry.argument(description="The token.")],
    ) -> RefreshSessionResult | None:
        return await outcome(
            lambda: info.context.services.sessions.refresh(input.refresh_token),
            lambda session: RefreshSessionSuccess.of(session, info.context),
        )

    @strawberry.mutation(
        description="End this session: its refresh token and access tokens stop working.",
        extensions=signed_in(),
    )
    async def sign_out(self, info: Info[Context, None]) -> SignOutSuccess | None:
        await info.context.services.sessions.sign_out(await info.context.require_actor())
        return SignOutSuccess(signed_out=True)

    @strawberry.mutation(
        description="End every session of the viewer and invalidate every access token.",
        extensions=signed_in(),
    )
    async def sign_out_everywhere(self, info: Info[Context, None]) -> SignOutSuccess | None:
        await info.context.services.sessions.sign_out_everywhere(await info.context.require_actor())
        return SignOutSuccess(signed_out=True)

    @strawberry.mutation(
        description="Change the password. Every other session ends; this one continues."
        " Wrong current passwords count like failed sign-ins (5 per 5 minutes).",
        extensions=signed_in(),
    )
    async def change_password(
        self,
        info: Info[Context, None],
        input: Annotated[ChangePasswordInput, strawberry.argument(description="The passwords.")],
    ) -> ChangePasswordResult | None:
        actor = await info.context.require_actor()
        command = ChangePassword(
            current_password=input.current_password, new_password=input.new_password
        )
        return await outcome(
            lambda: info.context.services.sessions.change_password(actor, command),
            lambda _changed: ChangePasswordSuccess(signed_out_elsewhere=True),
        )

"""Signing up and signing in."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.commands import SignIn, SignUp
from domain.errors import DomainError
from graph.context import Context
from graph.errors import ConflictError, InvalidCredentialsError, ValidationError, error_result
from graph.users.types import UserType


@strawberry.input(description="A new account.")
class SignUpInput:
    email: str = strawberry.field(description="Sign-in email; unique, any case.")
    password: str = strawberry.field(description="8 to 1024 characters.")
    display_name: str = strawberry.field(
        description="The name shown to others, 1 to 64 characters."
    )


@strawberry.type(description="The account was created; sign in to get a token.")
class SignUpSuccess:
    user: UserType = strawberry.field(description="The new user.")


SignUpResult = Annotated[
    SignUpSuccess | ValidationError | ConflictError,
    strawberry.union("SignUpResult", description="The outcome of `signUp`."),
]


@strawberry.input(description="Credentials to sign in with.")
class SignInInput:
    email: str = strawberry.field(description="The account's email.")
    password: str = strawberry.field(description="The account's password.")


@strawberry.type(description="Signed in. Send the token as `Authorization: Bearer <token>`.")
class SignInSuccess:
    access_token: str = strawberry.field(description="A short-lived access token (JWT).")
    token_type: str = strawberry.field(description="Always `Bearer`.")
    expires_at: datetime = strawberry.field(description="When the access token stops working.")
    user: UserType = strawberry.field(description="The signed-in user.")


SignInResult = Annotated[
    SignInSuccess | InvalidCredentialsError,
    strawberry.union("SignInResult", description="The outcome of `signIn`."),
]


@strawberry.type
class UserMutations:
    @strawberry.mutation(description="Create an account with the starting balance of play money.")
    async def sign_up(
        self,
        info: Info[Context, None],
        input: Annotated[SignUpInput, strawberry.argument(description="The new account.")],
    ) -> SignUpResult:
        command = SignUp(
            email=input.email, password=input.password, display_name=input.display_name
        )
        try:
            user = await info.context.services.users.sign_up(command)
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]
        return SignUpSuccess(user=UserType.from_entity(user))

    @strawberry.mutation(description="Exchange an email and password for an access token.")
    async def sign_in(
        self,
        info: Info[Context, None],
        input: Annotated[SignInInput, strawberry.argument(description="The credentials.")],
    ) -> SignInResult:
        try:
            session = await info.context.services.users.sign_in(
                SignIn(email=input.email, password=input.password)
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]
        return SignInSuccess(
            access_token=session.access.token,
            token_type="Bearer",
            expires_at=session.access.expires_at,
            user=UserType.from_entity(session.user),
        )

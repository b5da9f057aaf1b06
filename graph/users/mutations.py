"""Signing up."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.commands import SignUp
from graph.context import Context
from graph.errors import ConflictError, ValidationError
from graph.outcomes import outcome
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


@strawberry.type
class UserMutations:
    @strawberry.mutation(
        description="Create an account with the starting balance of play money. At most 10"
        " sign-ups per client address an hour (a top-level RATE_LIMITED beyond)."
    )
    async def sign_up(
        self,
        info: Info[Context, None],
        input: Annotated[SignUpInput, strawberry.argument(description="The new account.")],
    ) -> SignUpResult | None:
        command = SignUp(
            email=input.email,
            password=input.password,
            display_name=input.display_name,
            client_ip=info.context.client_ip,
        )
        return await outcome(
            lambda: info.context.services.users.sign_up(command),
            lambda user: SignUpSuccess(user=UserType.from_entity(user)),
        )

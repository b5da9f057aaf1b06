"""The GraphiQL page, opening on an example operation of this API.

Its scripts and styles come from a local directory when the server has one
(``GRAPHIQL_ASSETS_DIR``, mounted at ``ASSETS_PATH``; the Docker image installs them
from the npm registry at build time), so GraphiQL works without internet; otherwise
from the unpkg CDN. Either way each file is pinned by version and by its SRI hash: the
npm package files and the CDN's are the same bytes.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

ASSETS_PATH = "/graphiql/assets"
CDN = "https://unpkg.com"


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of an npm package, as the page loads it."""

    name: str  # the file's name in the local assets directory
    package: str
    version: str
    path: str  # the file's path inside the package
    integrity: str

    @property
    def is_script(self) -> bool:
        return self.name.endswith(".js")

    def url(self, assets_url: str | None) -> str:
        if assets_url is None:
            return f"{CDN}/{self.package}@{self.version}/{self.path}"
        return f"{assets_url.rstrip('/')}/{self.name}"


# Loaded in this order. Change a version here and in the Dockerfile's npm stage together
# (a test holds them equal), with the new file's hash: openssl dgst -sha384 -binary | base64.
ASSETS = (
    Asset(
        "react.production.min.js",
        "react",
        "18.2.0",
        "umd/react.production.min.js",
        "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
    ),
    Asset(
        "react-dom.production.min.js",
        "react-dom",
        "18.2.0",
        "umd/react-dom.production.min.js",
        "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
    ),
    Asset(
        "graphiql.min.css",
        "graphiql",
        "3.8.3",
        "graphiql.min.css",
        "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
    ),
    Asset(
        "plugin-explorer.css",
        "@graphiql/plugin-explorer",
        "1.0.2",
        "dist/style.css",
        "sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
    ),
    Asset(
        "graphiql.min.js",
        "graphiql",
        "3.8.3",
        "graphiql.min.js",
        "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
    ),
    Asset(
        "plugin-explorer.umd.js",
        "@graphiql/plugin-explorer",
        "1.0.2",
        "dist/index.umd.js",
        "sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
    ),
)

# The README's TopMarkets operation (tests/contract/operations/TopMarkets.graphql; a test
# holds them equal, so the page always opens on an operation that validates).
EXAMPLE_OPERATION = """\
query TopMarkets($first: Int = 20, $after: String) {
  markets(
    first: $first
    after: $after
    filter: { status: ACTIVE }
    orderBy: { field: VOLUME, direction: DESC }
  ) {
    totalCount
    pageInfo {
      hasNextPage
      endCursor
    }
    edges {
      cursor
      node {
        id
        name
        volume
        endDate
        yesPrice
        noPrice
        creator {
          id
          displayName
        }
      }
    }
  }
}
"""

DEFAULT_QUERY = (
    """\
# marketgraph: the most-traded active markets. Run it with the play button (Ctrl-Enter);
# the book icon on the left opens the schema's documentation.
#
# Signed-in operations (viewer, createMarket, ...) need an access token. Run
#
#   mutation { signIn(input: { email: "you@example.com", password: "..." }) {
#     ... on SignInSuccess { accessToken } ... on Error { code message } } }
#
# then open "Headers" below and enter
#
#   { "Authorization": "Bearer <the accessToken>" }
#
# Access tokens expire after 15 minutes by default: sign in again for a new one.

"""
    + EXAMPLE_OPERATION
)


def missing_assets(directory: Path) -> list[str]:
    """The asset files ``directory`` lacks (all of them when it does not exist)."""
    return [asset.name for asset in ASSETS if not (directory / asset.name).is_file()]


def _tag(asset: Asset, assets_url: str | None) -> str:
    url = html.escape(asset.url(assets_url))
    integrity = html.escape(asset.integrity)
    if asset.is_script:
        return f'<script crossorigin src="{url}" integrity="{integrity}"></script>'
    return f'<link crossorigin rel="stylesheet" href="{url}" integrity="{integrity}" />'


def _script_literal(value: str) -> str:
    """A JavaScript string literal that cannot end the surrounding <script> element."""
    return json.dumps(value).replace("<", "\\u003c")


def graphiql_html(assets_url: str | None) -> str:
    """The GraphiQL page: assets from ``assets_url`` (a URL path), or the CDN when None."""
    styles = "\n    ".join(_tag(a, assets_url) for a in ASSETS if not a.is_script)
    scripts = "\n    ".join(_tag(a, assets_url) for a in ASSETS if a.is_script)
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>marketgraph GraphiQL</title>
    <style>
      body {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }}
      #graphiql {{ height: 100vh; display: flex; }}
    </style>
    {styles}
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    {scripts}
    <script>
      const url = window.location.href.split("?")[0].split("#")[0];
      const subscriptionUrl = url.replace(/^http/, "ws");
      const fetcher = GraphiQL.createFetcher({{ url, subscriptionUrl }});
      const explorer = GraphiQLPluginExplorer.explorerPlugin();
      ReactDOM.createRoot(document.getElementById("graphiql")).render(
        React.createElement(GraphiQL, {{
          fetcher,
          defaultQuery: {_script_literal(DEFAULT_QUERY)},
          plugins: [explorer],
          defaultEditorToolsVisibility: true,
          isHeadersEditorEnabled: true,
          // An access token typed into Headers is not kept in localStorage.
          shouldPersistHeaders: false,
          inputValueDeprecation: true,
        }}),
      );
    </script>
  </body>
</html>
"""

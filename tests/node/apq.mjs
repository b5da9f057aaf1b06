// Apollo Client with createPersistedQueryLink against a live marketgraph server.
//
//   node apq.mjs <graphql url>
//
// Runs one query twice with fresh Apollo caches (so each run goes to the network), and
// prints as JSON what the client got and every HTTP exchange the link made: method,
// whether the request carried the query text and/or the hash, the status, and the
// server's extensions.cache. tests/api/test_apollo_client.py reads and checks it.
import { createHash } from "node:crypto";

import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries";

const url = process.argv[2];
const exchanges = [];

function describe(method, target, body) {
  const params = new URL(target).searchParams;
  const payload = body ? JSON.parse(body) : {};
  const extensions = payload.extensions ?? JSON.parse(params.get("extensions") ?? "{}");
  return {
    method,
    query: Boolean(payload.query ?? params.get("query")),
    hash: extensions.persistedQuery?.sha256Hash ?? null,
  };
}

async function recordingFetch(target, init = {}) {
  const exchange = describe(init.method ?? "GET", String(target), init.body);
  const response = await fetch(target, init);
  const text = await response.clone().text();
  let cache = null;
  let code = null;
  try {
    const parsed = JSON.parse(text);
    cache = parsed.extensions?.cache ?? null;
    code = parsed.errors?.[0]?.extensions?.code ?? null;
  } catch {
    // not JSON: the status tells
  }
  exchanges.push({ ...exchange, status: response.status, cache, code });
  return response;
}

const link = createPersistedQueryLink({
  sha256: (text) => createHash("sha256").update(text).digest("hex"),
  useGETForHashedQueries: true,
}).concat(new HttpLink({ uri: url, fetch: recordingFetch }));

const MARKETS = gql`
  query TopMarkets($first: Int!) {
    markets(first: $first) {
      totalCount
      nodes {
        id
        name
      }
    }
  }
`;

const results = [];
for (let run = 0; run < 2; run += 1) {
  // A fresh Apollo cache per run, so the client itself answers nothing.
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  const { data, error } = await client.query({ query: MARKETS, variables: { first: 2 } });
  results.push({ data, error: error ? String(error) : null });
}
process.stdout.write(JSON.stringify({ results, exchanges }));

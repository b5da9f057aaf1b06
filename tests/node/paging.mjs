// Apollo Client's cache with README's typePolicies, paging through a live marketgraph server.
//
//   node paging.mjs <graphql url> <access token> <market id> <typePolicies> <operations dir>
//
// <typePolicies> is the object literal README's Apollo example gives InMemoryCache (it may
// call relayStylePagination). Runs the contract operations MarketActivity and Ledger, then
// each one's next page as fetchMore does (the same query with the page's endCursor, from
// the network, merged into the cache by the field policies), and prints as JSON the ids the
// cache holds after each page. tests/api/test_apollo_paging.py reads and checks them.
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { relayStylePagination } from "@apollo/client/utilities";

const [url, token, marketId, policies, operations] = process.argv.slice(2);
const typePolicies = new Function("relayStylePagination", `return (${policies});`)(
  relayStylePagination,
);
const client = new ApolloClient({
  link: new HttpLink({ uri: url, headers: { authorization: `Bearer ${token}` } }),
  cache: new InMemoryCache({ typePolicies }),
});

function operation(name) {
  return gql(readFileSync(join(operations, `${name}.graphql`), "utf8"));
}

async function pages(query, variables, connectionOf, afterVariable) {
  const held = () => connectionOf(client.readQuery({ query, variables })).edges.map((e) => e.node.id);
  const first = await client.query({ query, variables });
  if (first.error) throw first.error;
  const afterFirst = held();
  const next = await client.query({
    query,
    variables: { ...variables, [afterVariable]: connectionOf(first.data).pageInfo.endCursor },
    fetchPolicy: "network-only",
  });
  if (next.error) throw next.error;
  return { afterFirst, afterSecond: held() };
}

const activity = await pages(
  operation("MarketActivity"),
  { id: marketId },
  (data) => data.market.trades,
  "tradesAfter",
);
const ledger = await pages(operation("Ledger"), {}, (data) => data.viewer.ledger, "after");
process.stdout.write(JSON.stringify({ activity, ledger }));

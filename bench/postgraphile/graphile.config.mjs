// PostGraphile v5 over Sinergi's bench database, as a team would run it for the same reads:
// the amber preset with pg-aggregates, one Node process, no authentication, no GraphiQL.
// bench.run starts it with DATABASE_URL and POSTGRAPHILE_PORT set.
import { makePgService } from "postgraphile/adaptors/pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makeJSONPgSmartTagsPlugin } from "postgraphile/utils";
import aggregates from "@graphile/pg-aggregates";

// v5 offers ordering, and so pg-aggregates' groupBy, only on indexed columns. msmes.scale has
// no index (Sinergi reads its figures from rollups), so a smart tag opens it to grouping
// rather than an index PostGraphile alone would need.
const ScaleGroupingPlugin = makeJSONPgSmartTagsPlugin({
  version: 1,
  config: { attribute: { "msmes.scale": { tags: { behavior: ["+orderBy"] } } } },
});

/** @type {GraphileConfig.Preset} */
export default {
  extends: [PostGraphileAmberPreset, aggregates.PgAggregatesPreset],
  plugins: [ScaleGroupingPlugin],
  pgServices: [
    makePgService({ connectionString: process.env.DATABASE_URL, schemas: ["public"] }),
  ],
  grafserv: {
    host: "127.0.0.1",
    port: Number(process.env.POSTGRAPHILE_PORT ?? 8102),
    graphiql: false,
    watch: false,
  },
  grafast: { explain: false },
};

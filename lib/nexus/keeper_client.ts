/**
 * The two Keeper calls Nexus makes, with the key-version fields **[ours]**
 * (see `lib/keeper/app.ts`): fetch the shard of a version, hand over the
 * shard of a version. A Keeper that answers without `keyVersion` is one that
 * does not know versions (SPIKE's): it holds one shard, of any version.
 *
 * @module
 */
import { PATHS } from "../api/paths.ts";
import { shardBytes } from "../api/validate.ts";
import type { Transport } from "../client/transport.ts";
import { isValidScalar } from "../crypto/scalar.ts";
import { zeroize } from "../crypto/zeroize.ts";

const JSON_HEADERS = Object.freeze({ "content-type": "application/json" });

/** A shard fetched from a Keeper. */
export interface FetchedShard {
  /** The share value (the caller zeroes it). */
  readonly value: Uint8Array;
  /** The version the Keeper says it belongs to; `undefined` from a Keeper that does not know versions. */
  readonly keyVersion?: number;
}

/** What a Keeper answered to a shard it was handed. */
export interface ContributeAnswer {
  /** Whether it took it (200). */
  readonly accepted: boolean;
  /** The HTTP status. */
  readonly status: number;
  /** Whether it keeps versions apart (it echoed the version); `false` for SPIKE's Keeper. */
  readonly versioned: boolean;
  /** The versions it holds now, when versioned. */
  readonly versions: readonly number[];
}

function parse(body: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(body));
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Asks the Keeper at `url` for its shard of root key version `keyVersion`.
 * `undefined` when it holds none (404, its normal answer before it got one).
 *
 * @throws on a transport failure or an answer that is not a valid share
 */
export async function fetchShard(
  transport: Transport,
  url: string,
  keyVersion: number,
): Promise<FetchedShard | undefined> {
  const response = await transport.post(`${url}${PATHS.keeperShard}`, JSON.stringify({ keyVersion }), {
    ...JSON_HEADERS,
  });
  if (response.status !== 200) return undefined;
  const parsed = parse(response.body);
  const values = parsed?.shard;
  const value = shardBytes(values);
  if (Array.isArray(values)) values.fill(0);
  if (!isValidScalar(value)) {
    zeroize(value);
    throw new Error("shard is not a valid share value");
  }
  const version = parsed?.keyVersion;
  return typeof version === "number" && Number.isSafeInteger(version) && version >= 1
    ? { value, keyVersion: version }
    : { value };
}

/** Hands the Keeper at `url` its shard of version `keyVersion`, retiring lower versions when asked. */
export async function contributeShard(
  transport: Transport,
  url: string,
  shard: Uint8Array,
  keyVersion: number,
  retireBelow?: number,
): Promise<ContributeAnswer> {
  const values = Array.from(shard);
  const body = JSON.stringify({ shard: values, keyVersion, ...(retireBelow === undefined ? {} : { retireBelow }) });
  values.fill(0);
  const response = await transport.post(`${url}${PATHS.keeperContribute}`, body, { ...JSON_HEADERS });
  const parsed = response.status === 200 ? parse(response.body) : undefined;
  const versioned = parsed?.keyVersion === keyVersion;
  const versions = versioned && Array.isArray(parsed?.versions)
    ? (parsed.versions as unknown[]).filter((v): v is number => typeof v === "number")
    : [];
  return { accepted: response.status === 200, status: response.status, versioned, versions };
}

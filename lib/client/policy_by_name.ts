/**
 * Policy reads and deletes by name that mean the same against either Nexus.
 *
 * SPIKE v0.8.2's Nexus answers `get` and `delete` of a policy name it does
 * not hold with 500 `api_internal_error` (on SQLite its store reports the
 * missing row as a load failure, not as "not found"); ours answers 404.
 * SPIKE's own pilot never sees that 500 because it lists the policies
 * first. These helpers ask the direct question first (one round trip on the
 * common path) and list only when Nexus answered 500, turning the answer
 * into a plain 404 when the name is indeed not there; any other 500 stays
 * what it was.
 *
 * @module
 */
import { InternalServerError, NotFoundError } from "./errors.ts";
import type { NexusClient, PolicyView } from "./nexus_client.ts";

/** The calls the helpers make. */
export type PolicyCalls = Pick<NexusClient, "getPolicy" | "deletePolicy" | "listPolicies">;

/** Reads the policy `name`; a `NotFoundError` when Nexus holds none of that name. */
export async function getPolicyByName(nexus: PolicyCalls, name: string): Promise<PolicyView> {
  try {
    return await nexus.getPolicy(name);
  } catch (error) {
    throw await missingAsNotFound(nexus, name, error);
  }
}

/** Deletes the policy `name`; a `NotFoundError` when Nexus holds none of that name. */
export async function deletePolicyByName(nexus: PolicyCalls, name: string): Promise<void> {
  try {
    await nexus.deletePolicy(name);
  } catch (error) {
    throw await missingAsNotFound(nexus, name, error);
  }
}

/** Whether a policy named `name` exists. */
export async function policyExists(nexus: PolicyCalls, name: string): Promise<boolean> {
  try {
    await getPolicyByName(nexus, name);
    return true;
  } catch (error) {
    if (error instanceof NotFoundError) return false;
    throw error;
  }
}

/** `error`, or a `NotFoundError` in its place when it is a 500 and the list shows no such name. */
async function missingAsNotFound(nexus: PolicyCalls, name: string, error: unknown): Promise<unknown> {
  if (!(error instanceof InternalServerError)) return error;
  const listed = await nexus.listPolicies().catch(() => undefined);
  if (listed === undefined || listed.some((policy) => policy.name === name)) return error;
  return new NotFoundError(404, "api_not_found");
}

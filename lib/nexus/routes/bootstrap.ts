/**
 * `/v1/bootstrap/verify`: Bootstrap proves Nexus holds the root key it made
 * by sending a random text sealed with that key; Nexus answers the SHA-256
 * of the plaintext. AES-256-GCM under the root key itself, no associated
 * data, as SPIKE's Bootstrap does. Before a key is loaded the answer is 503
 * with `initialized` saying whether this Nexus already holds data.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { badRequest } from "../../api/errors.ts";
import { PATHS } from "../../api/paths.ts";
import * as v from "../../api/validate.ts";
import { decryptGcm } from "../../crypto/aead.ts";
import { zeroize } from "../../crypto/zeroize.ts";
import { parseJsonBody } from "../../api/body.ts";
import { KEY_CHECK_META } from "../key_check.ts";
import type { Route } from "../route.ts";

/** The bootstrap route. */
export const bootstrapRoutes: readonly Route[] = [
  {
    path: PATHS.bootstrapVerify,
    action: "",
    // Checked by hand so a not-ready answer can say whether data exists.
    needsRootKey: false,
    admit: (caller) => caller.bootstrap,
    async handle(input) {
      if (!input.deps.keys.ready) {
        // [ours] `initialized` tells Bootstrap that this Nexus already keeps
        // data sealed under some root key (old clients ignore the field).
        const initialized = input.deps.store ? (await input.deps.store.getMeta(KEY_CHECK_META)) !== undefined : false;
        return Response.json({ err: "state_not_ready", initialized }, { status: 503 });
      }
      const b = v.object(parseJsonBody(input.body));
      const nonce = v.base64(b.nonce, "nonce");
      const ciphertext = v.base64(b.ciphertext, "ciphertext");
      if (nonce.length !== 12) throw badRequest("nonce must be 12 bytes");
      let plaintext: Uint8Array;
      try {
        plaintext = await input.deps.keys.withRootKey((root) => decryptGcm(root, nonce, ciphertext, new Uint8Array(0)));
      } catch {
        throw badRequest("ciphertext does not open with this Nexus's root key");
      }
      try {
        return { hash: bytesToHex(sha256(plaintext)) };
      } finally {
        zeroize(plaintext);
      }
    },
  },
];

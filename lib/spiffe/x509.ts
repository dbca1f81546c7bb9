/**
 * `@peculiar/x509`, loaded after the `Reflect` metadata shim it needs.
 *
 * Import X.509 helpers from here rather than from `@peculiar/x509` directly:
 * module evaluation follows import order, so the shim is in place before
 * tsyringe (a dependency of `@peculiar/x509`) checks for it.
 *
 * @module
 */

import "./reflect_shim.ts";

export * from "@peculiar/x509";

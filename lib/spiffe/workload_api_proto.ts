/**
 * Protobuf wire encoding of the SPIFFE Workload API's X.509 messages,
 * written by hand over `@bufbuild/protobuf/wire` (the proto has no package
 * and only a handful of fields, so generated code would not pay for itself).
 *
 * Decoders skip unknown fields, so newer agents that add fields still work;
 * a known field with the wrong wire type is an error.
 *
 * @module
 */

import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** The gRPC service name (the proto declares no package). */
export const WORKLOAD_API_SERVICE = "SpiffeWorkloadAPI";
/** Method path of the X.509-SVID stream. */
export const FETCH_X509_SVID_PATH = "/SpiffeWorkloadAPI/FetchX509SVID";
/** Method path of the X.509 bundles stream. */
export const FETCH_X509_BUNDLES_PATH = "/SpiffeWorkloadAPI/FetchX509Bundles";
/** The metadata header every Workload API call must carry, with value `true`. */
export const SECURITY_HEADER = "workload.spiffe.io";

/** `X509SVIDRequest {}`: no fields. */
export type X509SvidRequest = Record<string, never>;

/** `X509SVID`: one SVID with its key and its trust domain's bundle. */
export interface X509Svid {
  /** 1: the SPIFFE ID of the SVID. */
  readonly spiffeId: string;
  /** 2: ASN.1 DER certificates concatenated, leaf first. */
  readonly x509Svid: Uint8Array;
  /** 3: PKCS#8 DER private key. */
  readonly x509SvidKey: Uint8Array;
  /** 4: DER CA certificates concatenated, for the SVID's trust domain. */
  readonly bundle: Uint8Array;
  /** 5: an operator hint telling SVIDs apart; often empty. */
  readonly hint: string;
}

/** `X509SVIDResponse`: what each message of the FetchX509SVID stream carries. */
export interface X509SvidResponse {
  /** 1: the SVIDs; the first is the default. */
  readonly svids: readonly X509Svid[];
  /** 2: DER CRLs. */
  readonly crl: readonly Uint8Array[];
  /** 3: federated trust domain name → DER CA certificates concatenated. */
  readonly federatedBundles: ReadonlyMap<string, Uint8Array>;
}

/** `X509BundlesRequest {}`: no fields. */
export type X509BundlesRequest = Record<string, never>;

/** `X509BundlesResponse`: what each message of the FetchX509Bundles stream carries. */
export interface X509BundlesResponse {
  /** 1: DER CRLs. */
  readonly crl: readonly Uint8Array[];
  /** 2: trust domain name → DER CA certificates concatenated. */
  readonly bundles: ReadonlyMap<string, Uint8Array>;
}

/** Encodes the (empty) `X509SVIDRequest`. */
export function encodeX509SvidRequest(_request: X509SvidRequest = {}): Uint8Array {
  return new Uint8Array(0);
}

/** Decodes an `X509SVIDRequest`, skipping (unknown) fields. */
export function decodeX509SvidRequest(bytes: Uint8Array): X509SvidRequest {
  skipAll(bytes);
  return {};
}

/** Encodes the (empty) `X509BundlesRequest`. */
export function encodeX509BundlesRequest(_request: X509BundlesRequest = {}): Uint8Array {
  return new Uint8Array(0);
}

/** Decodes an `X509BundlesRequest`, skipping (unknown) fields. */
export function decodeX509BundlesRequest(bytes: Uint8Array): X509BundlesRequest {
  skipAll(bytes);
  return {};
}

/** Encodes an `X509SVID`. Proto3 defaults (empty strings and bytes) are omitted. */
export function encodeX509Svid(svid: X509Svid): Uint8Array {
  const w = new BinaryWriter();
  writeX509Svid(w, svid);
  return w.finish();
}

/**
 * Decodes an `X509SVID`. Byte fields are views into `bytes`, so zeroing
 * `bytes` also zeroes the key.
 */
export function decodeX509Svid(bytes: Uint8Array): X509Svid {
  const r = new BinaryReader(bytes);
  let spiffeId = "", hint = "";
  let x509Svid: Uint8Array = new Uint8Array(0);
  let x509SvidKey: Uint8Array = new Uint8Array(0);
  let bundle: Uint8Array = new Uint8Array(0);
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    switch (field) {
      case 1:
        spiffeId = readString(r, type, "X509SVID.spiffe_id");
        break;
      case 2:
        x509Svid = readBytes(r, type, "X509SVID.x509_svid");
        break;
      case 3:
        x509SvidKey = readBytes(r, type, "X509SVID.x509_svid_key");
        break;
      case 4:
        bundle = readBytes(r, type, "X509SVID.bundle");
        break;
      case 5:
        hint = readString(r, type, "X509SVID.hint");
        break;
      default:
        r.skip(type, field);
    }
  }
  return { spiffeId, x509Svid, x509SvidKey, bundle, hint };
}

/** Encodes an `X509SVIDResponse`. */
export function encodeX509SvidResponse(response: X509SvidResponse): Uint8Array {
  const w = new BinaryWriter();
  for (const svid of response.svids) {
    w.tag(1, WireType.LengthDelimited).fork();
    writeX509Svid(w, svid);
    w.join();
  }
  for (const crl of response.crl) w.tag(2, WireType.LengthDelimited).bytes(crl);
  writeBytesMap(w, 3, response.federatedBundles);
  return w.finish();
}

/** Decodes an `X509SVIDResponse` (byte fields are views into `bytes`). */
export function decodeX509SvidResponse(bytes: Uint8Array): X509SvidResponse {
  const r = new BinaryReader(bytes);
  const svids: X509Svid[] = [];
  const crl: Uint8Array[] = [];
  const federatedBundles = new Map<string, Uint8Array>();
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    switch (field) {
      case 1:
        svids.push(decodeX509Svid(readBytes(r, type, "X509SVIDResponse.svids")));
        break;
      case 2:
        crl.push(readBytes(r, type, "X509SVIDResponse.crl"));
        break;
      case 3:
        readBytesMapEntry(readBytes(r, type, "X509SVIDResponse.federated_bundles"), federatedBundles);
        break;
      default:
        r.skip(type, field);
    }
  }
  return { svids, crl, federatedBundles };
}

/** Encodes an `X509BundlesResponse`. */
export function encodeX509BundlesResponse(response: X509BundlesResponse): Uint8Array {
  const w = new BinaryWriter();
  for (const crl of response.crl) w.tag(1, WireType.LengthDelimited).bytes(crl);
  writeBytesMap(w, 2, response.bundles);
  return w.finish();
}

/** Decodes an `X509BundlesResponse` (byte fields are views into `bytes`). */
export function decodeX509BundlesResponse(bytes: Uint8Array): X509BundlesResponse {
  const r = new BinaryReader(bytes);
  const crl: Uint8Array[] = [];
  const bundles = new Map<string, Uint8Array>();
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    switch (field) {
      case 1:
        crl.push(readBytes(r, type, "X509BundlesResponse.crl"));
        break;
      case 2:
        readBytesMapEntry(readBytes(r, type, "X509BundlesResponse.bundles"), bundles);
        break;
      default:
        r.skip(type, field);
    }
  }
  return { crl, bundles };
}

function writeX509Svid(w: BinaryWriter, svid: X509Svid): void {
  if (svid.spiffeId !== "") w.tag(1, WireType.LengthDelimited).string(svid.spiffeId);
  if (svid.x509Svid.length > 0) w.tag(2, WireType.LengthDelimited).bytes(svid.x509Svid);
  if (svid.x509SvidKey.length > 0) w.tag(3, WireType.LengthDelimited).bytes(svid.x509SvidKey);
  if (svid.bundle.length > 0) w.tag(4, WireType.LengthDelimited).bytes(svid.bundle);
  if (svid.hint !== "") w.tag(5, WireType.LengthDelimited).string(svid.hint);
}

/** A `map<string, bytes>` is a repeated entry message { key = 1; value = 2 }. */
function writeBytesMap(w: BinaryWriter, field: number, map: ReadonlyMap<string, Uint8Array>): void {
  for (const [key, value] of map) {
    w.tag(field, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).string(key);
    w.tag(2, WireType.LengthDelimited).bytes(value);
    w.join();
  }
}

function readBytesMapEntry(entry: Uint8Array, into: Map<string, Uint8Array>): void {
  const r = new BinaryReader(entry);
  let key = "";
  let value: Uint8Array = new Uint8Array(0);
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field === 1) key = readString(r, type, "map entry key");
    else if (field === 2) value = readBytes(r, type, "map entry value");
    else r.skip(type, field);
  }
  // As in every protobuf runtime, a repeated key keeps the last value.
  into.set(key, value);
}

function readBytes(r: BinaryReader, type: WireType, name: string): Uint8Array {
  expectLengthDelimited(type, name);
  return r.bytes();
}

function readString(r: BinaryReader, type: WireType, name: string): string {
  expectLengthDelimited(type, name);
  return r.string(true);
}

function expectLengthDelimited(type: WireType, name: string): void {
  if (type !== WireType.LengthDelimited) throw new Error(`protobuf: ${name} has wire type ${type}, want 2`);
}

function skipAll(bytes: Uint8Array): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    r.skip(type, field);
  }
}

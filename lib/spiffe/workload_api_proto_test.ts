import assert from "node:assert/strict";
import fc from "fast-check";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import {
  decodeX509BundlesRequest,
  decodeX509BundlesResponse,
  decodeX509Svid,
  decodeX509SvidRequest,
  decodeX509SvidResponse,
  encodeX509BundlesRequest,
  encodeX509BundlesResponse,
  encodeX509Svid,
  encodeX509SvidRequest,
  encodeX509SvidResponse,
  type X509Svid,
} from "./workload_api_proto.ts";

const bytes = fc.uint8Array({ maxLength: 64 });
const svidArb: fc.Arbitrary<X509Svid> = fc.record({
  spiffeId: fc.string({ maxLength: 40 }),
  x509Svid: bytes,
  x509SvidKey: bytes,
  bundle: bytes,
  hint: fc.string({ maxLength: 10 }),
}).map((r) => ({ ...r })); // fast-check records have no prototype; decoded messages do
const bytesMap = fc.dictionary(fc.string({ maxLength: 12 }), bytes, { maxKeys: 3 }).map((d) =>
  new Map(Object.entries(d))
);

Deno.test("X509SVIDResponse round-trips", () => {
  fc.assert(
    fc.property(
      fc.array(svidArb, { maxLength: 3 }),
      fc.array(bytes, { maxLength: 2 }),
      bytesMap,
      (svids, crl, federatedBundles) => {
        const response = { svids, crl, federatedBundles };
        assert.deepEqual(decodeX509SvidResponse(encodeX509SvidResponse(response)), response);
      },
    ),
  );
});

Deno.test("X509BundlesResponse round-trips", () => {
  fc.assert(
    fc.property(fc.array(bytes, { maxLength: 2 }), bytesMap, (crl, bundles) => {
      assert.deepEqual(decodeX509BundlesResponse(encodeX509BundlesResponse({ crl, bundles })), { crl, bundles });
    }),
  );
});

Deno.test("X509SVID encodes to the documented field numbers", () => {
  const encoded = encodeX509Svid({
    spiffeId: "a",
    x509Svid: new Uint8Array([1]),
    x509SvidKey: new Uint8Array([2]),
    bundle: new Uint8Array([3]),
    hint: "h",
  });
  // tag = field << 3 | 2 (length-delimited), then length, then payload.
  assert.deepEqual(encoded, new Uint8Array([0x0a, 1, 0x61, 0x12, 1, 1, 0x1a, 1, 2, 0x22, 1, 3, 0x2a, 1, 0x68]));
  // Proto3 leaves default values out.
  const empty = new Uint8Array(0);
  assert.deepEqual(
    encodeX509Svid({ spiffeId: "", x509Svid: empty, x509SvidKey: empty, bundle: empty, hint: "" }),
    empty,
  );
  assert.deepEqual(encodeX509SvidRequest(), empty);
  assert.deepEqual(encodeX509BundlesRequest(), empty);
});

Deno.test("decoders skip unknown fields of every wire type", () => {
  const w = new BinaryWriter();
  w.tag(99, WireType.Varint).uint32(7);
  w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string("spiffe://td/x");
  w.tag(42, WireType.Bit64).fixed64(1n);
  w.join();
  w.tag(3, WireType.LengthDelimited).fork()
    .tag(1, WireType.LengthDelimited).string("other.td")
    .tag(7, WireType.Bit32).fixed32(5)
    .tag(2, WireType.LengthDelimited).bytes(new Uint8Array([9]))
    .join();
  w.tag(100, WireType.LengthDelimited).bytes(new Uint8Array([1, 2, 3]));
  const response = decodeX509SvidResponse(w.finish());
  assert.equal(response.svids.length, 1);
  assert.equal(response.svids[0]!.spiffeId, "spiffe://td/x");
  assert.deepEqual(response.federatedBundles, new Map([["other.td", new Uint8Array([9])]]));
  assert.deepEqual(decodeX509SvidRequest(new BinaryWriter().tag(5, WireType.Varint).uint32(1).finish()), {});
  assert.deepEqual(decodeX509BundlesRequest(new BinaryWriter().tag(5, WireType.Varint).uint32(1).finish()), {});
});

Deno.test("a map entry without a value decodes to empty bytes; a repeated key keeps the last", () => {
  const w = new BinaryWriter();
  w.tag(2, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string("td").join();
  w.tag(2, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string("x")
    .tag(2, WireType.LengthDelimited).bytes(new Uint8Array([1])).join();
  w.tag(2, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string("x")
    .tag(2, WireType.LengthDelimited).bytes(new Uint8Array([2])).join();
  assert.deepEqual(
    decodeX509BundlesResponse(w.finish()).bundles,
    new Map([["td", new Uint8Array(0)], ["x", new Uint8Array([2])]]),
  );
});

Deno.test("decoders reject a known field with the wrong wire type, and truncated input", () => {
  assert.throws(() => decodeX509Svid(new BinaryWriter().tag(2, WireType.Varint).uint32(1).finish()), /wire type 0/);
  const good = encodeX509SvidResponse({ svids: [], crl: [new Uint8Array(10)], federatedBundles: new Map() });
  assert.throws(() => decodeX509SvidResponse(good.subarray(0, good.length - 1)));
});

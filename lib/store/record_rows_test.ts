import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { recordFromJoinArrays, recordFromJoinRows, SECRET_JOIN_COLUMNS, SECRET_JOIN_POSITIONS } from "./record_rows.ts";
import { SQLITE_DECODERS, SQLITE_SECRET_READ_QUERY } from "./sqlite_database.ts";
import { migrate } from "./sqlite_schema.ts";

Deno.test("record rows: the array form reads each column where the SELECT puts it", () => {
  assert.deepEqual(
    SECRET_JOIN_COLUMNS.map((column) => SECRET_JOIN_POSITIONS[column]),
    SECRET_JOIN_COLUMNS.map((_, i) => i),
  );
  const db = new DatabaseSync(":memory:");
  try {
    migrate(db);
    const columns = db.prepare(SQLITE_SECRET_READ_QUERY).columns().map((column) => column.name);
    assert.deepEqual(columns, [...SECRET_JOIN_COLUMNS]);
  } finally {
    db.close();
  }
});

Deno.test("record rows: arrays and objects of the same rows make the same record, every optional part included", () => {
  // The secret's columns repeat on every row of the join; the version columns differ.
  const secret = {
    revision: 7,
    current_version: 3,
    oldest_version: 2,
    max_versions: 10,
    created: 1_000,
    updated: 2_000,
    custom_metadata: new Uint8Array([1, 2, 3]),
    custom_metadata_key_version: null,
    expires: 9_000,
  };
  const objects = [
    {
      ...secret,
      version: 2,
      v_created: 1_500,
      v_deleted: 1_800,
      sealed: new Uint8Array([4, 5]),
      key_version: 1,
      v_expires: null,
    },
    {
      ...secret,
      version: 3,
      v_created: 2_000,
      v_deleted: null,
      sealed: new Uint8Array([6]),
      key_version: 2,
      v_expires: 8_000,
    },
  ];
  const fromObjects = recordFromJoinRows(objects, SQLITE_DECODERS);
  const fromArrays = recordFromJoinArrays(
    objects.map((row) => SECRET_JOIN_COLUMNS.map((column) => row[column])),
    SQLITE_DECODERS,
  );
  assert.deepEqual(fromArrays, fromObjects);
  assert.deepEqual(fromObjects, {
    revision: 7,
    currentVersion: 3,
    oldestVersion: 2,
    maxVersions: 10,
    createdTime: new Date(1_000),
    updatedTime: new Date(2_000),
    versions: new Map([
      [2, {
        version: 2,
        createdTime: new Date(1_500),
        deletedTime: new Date(1_800),
        sealed: new Uint8Array([4, 5]),
        keyVersion: 1,
      }],
      [3, {
        version: 3,
        createdTime: new Date(2_000),
        deletedTime: null,
        sealed: new Uint8Array([6]),
        keyVersion: 2,
        expiresAt: new Date(8_000),
      }],
    ]),
    // Metadata from before key versions reads as version 1.
    customMetadata: { sealed: new Uint8Array([1, 2, 3]), keyVersion: 1 },
    expiresAt: new Date(9_000),
  });
  assert.equal(recordFromJoinArrays([], SQLITE_DECODERS), undefined);
});

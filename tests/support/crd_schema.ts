/**
 * Checks a custom resource against its CustomResourceDefinition's
 * `openAPIV3Schema`, as the API server's structural schema validation and
 * strict field validation (`kubectl apply --validate=strict`) would: types,
 * required fields, enums, patterns and bounds, and no field the schema does
 * not define (the API server would drop those silently) unless the schema
 * says `x-kubernetes-preserve-unknown-fields`. CEL rules
 * (`x-kubernetes-validations`) are not evaluated.
 *
 * @module
 */
import { parse } from "yaml";

/** The subset of OpenAPI v3 that CRD schemas use. */
export interface CrdSchema {
  readonly type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  readonly properties?: Readonly<Record<string, CrdSchema>>;
  readonly additionalProperties?: CrdSchema | boolean;
  readonly items?: CrdSchema;
  readonly required?: readonly string[];
  readonly enum?: readonly unknown[];
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly nullable?: boolean;
  readonly "x-kubernetes-int-or-string"?: boolean;
  readonly "x-kubernetes-preserve-unknown-fields"?: boolean;
}

/** A CRD, reduced to what validation needs. */
export interface LoadedCrd {
  readonly group: string;
  readonly kind: string;
  readonly scope: "Namespaced" | "Cluster";
  /** Schema per served version name. */
  readonly versions: ReadonlyMap<string, CrdSchema>;
}

/** Reads a CRD manifest (YAML). */
export async function loadCrd(path: string): Promise<LoadedCrd> {
  const crd = parse(await Deno.readTextFile(path));
  if (crd?.kind !== "CustomResourceDefinition") throw new Error(`${path} is not a CustomResourceDefinition`);
  const versions = new Map<string, CrdSchema>();
  for (const version of crd.spec.versions) {
    if (version.served) versions.set(version.name, version.schema.openAPIV3Schema);
  }
  return { group: crd.spec.group, kind: crd.spec.names.kind, scope: crd.spec.scope, versions };
}

/** Every problem with `object` as an instance of `crd`; empty when it is valid. */
export function validateCustomResource(object: Record<string, unknown>, crd: LoadedCrd): string[] {
  const [group, version] = String(object.apiVersion ?? "").split("/");
  if (group !== crd.group || object.kind !== crd.kind) {
    return [`${object.apiVersion}/${object.kind} is not a ${crd.group} ${crd.kind}`];
  }
  const schema = crd.versions.get(version ?? "");
  if (!schema) return [`${crd.kind} has no served version ${version}`];
  // The API server checks metadata as ObjectMeta, not against the CRD's schema.
  const errors = validateValue({ ...object, metadata: {} }, schema, "");
  const metadata = (object.metadata ?? {}) as Record<string, unknown>;
  for (const [field, value] of Object.entries(metadata)) {
    if (field === "labels" || field === "annotations") {
      if (typeof value !== "object" || value === null || Object.values(value).some((v) => typeof v !== "string")) {
        errors.push(`.metadata.${field}: must map strings to strings`);
      }
    } else if (field !== "name" && field !== "namespace") {
      errors.push(`.metadata.${field}: not expected in a manifest`);
    }
  }
  const name = String(metadata.name ?? "");
  // Every object name must be a DNS subdomain (RFC 1123).
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name) || name.length > 253) {
    errors.push(`.metadata.name: '${name}' is not a DNS subdomain`);
  }
  if (crd.scope === "Cluster" && metadata.namespace !== undefined) {
    errors.push(`.metadata.namespace: ${crd.kind} is cluster-scoped`);
  }
  return errors;
}

/** Validates `value` at `path` against `schema`. */
export function validateValue(value: unknown, schema: CrdSchema, path: string): string[] {
  const at = path || ".";
  if (value === null) return schema.nullable ? [] : [`${at}: null is not allowed`];
  if (schema["x-kubernetes-int-or-string"]) {
    return typeof value === "string" || Number.isInteger(value) ? [] : [`${at}: must be an integer or a string`];
  }
  const errors: string[] = [];
  switch (schema.type) {
    case "object": {
      if (typeof value !== "object" || Array.isArray(value)) return [`${at}: must be an object`];
      const record = value as Record<string, unknown>;
      for (const field of schema.required ?? []) {
        if (!(field in record)) errors.push(`${path}.${field}: required`);
      }
      for (const [field, child] of Object.entries(record)) {
        const childSchema = schema.properties?.[field] ??
          (typeof schema.additionalProperties === "object" ? schema.additionalProperties : undefined);
        if (childSchema) {
          errors.push(...validateValue(child, childSchema, `${path}.${field}`));
        } else if (!schema["x-kubernetes-preserve-unknown-fields"] && schema.additionalProperties !== true) {
          errors.push(`${path}.${field}: unknown field (the CRD does not define it)`);
        }
      }
      return errors;
    }
    case "array": {
      if (!Array.isArray(value)) return [`${at}: must be an array`];
      if (schema.minItems !== undefined && value.length < schema.minItems) errors.push(`${at}: too few items`);
      if (schema.maxItems !== undefined && value.length > schema.maxItems) errors.push(`${at}: too many items`);
      if (schema.items) value.forEach((item, i) => errors.push(...validateValue(item, schema.items!, `${path}[${i}]`)));
      return errors;
    }
    case "string":
      if (typeof value !== "string") return [`${at}: must be a string`];
      if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) {
        errors.push(`${at}: '${value}' does not match ${schema.pattern}`);
      }
      if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${at}: too short`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push(`${at}: too long`);
      break;
    case "integer":
    case "number":
      if (typeof value !== "number" || (schema.type === "integer" && !Number.isInteger(value))) {
        return [`${at}: must be ${schema.type === "integer" ? "an integer" : "a number"}`];
      }
      if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${at}: below ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${at}: above ${schema.maximum}`);
      break;
    case "boolean":
      if (typeof value !== "boolean") return [`${at}: must be a boolean`];
      break;
    case undefined:
      break; // no constraint (x-kubernetes-preserve-unknown-fields values)
  }
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${at}: '${value}' is not one of ${schema.enum}`);
  return errors;
}

/**
 * A minimal `Reflect` metadata shim, installed only when nothing better is
 * present.
 *
 * `@peculiar/x509` depends on `tsyringe`, which refuses to load unless
 * `Reflect.getMetadata` exists (it normally comes from the `reflect-metadata`
 * package). tsyringe only stores and reads constructor parameter metadata for
 * its own classes, so a small WeakMap-backed store is enough. Import this
 * module before `@peculiar/x509` (see `x509.ts`, which does it for you).
 *
 * @module
 */

type MetadataStore = WeakMap<object, Map<unknown, unknown>>;

interface ReflectWithMetadata {
  getMetadata?: (key: unknown, target: object) => unknown;
  getOwnMetadata?: (key: unknown, target: object) => unknown;
  defineMetadata?: (key: unknown, value: unknown, target: object) => void;
  hasMetadata?: (key: unknown, target: object) => boolean;
  hasOwnMetadata?: (key: unknown, target: object) => boolean;
}

function installReflectMetadataShim(): void {
  const reflect = Reflect as unknown as ReflectWithMetadata;
  if (typeof reflect.getMetadata === "function") return;
  // The store lives in this closure, reachable only through Reflect: the
  // global polyfill is the point of this module, not incidental state.
  const store: MetadataStore = new WeakMap();
  const own = (target: object): Map<unknown, unknown> | undefined => store.get(target);
  const lookup = (key: unknown, target: object): unknown => {
    // Walk the prototype chain like reflect-metadata, bounded by its length.
    for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t)) {
      const map = own(t);
      if (map?.has(key)) return map.get(key);
    }
    return undefined;
  };
  reflect.getOwnMetadata = (key, target) => own(target)?.get(key);
  reflect.hasOwnMetadata = (key, target) => own(target)?.has(key) ?? false;
  reflect.getMetadata = lookup;
  reflect.hasMetadata = (key, target) => lookup(key, target) !== undefined;
  reflect.defineMetadata = (key, value, target) => {
    let map = own(target);
    if (map === undefined) {
      map = new Map();
      store.set(target, map);
    }
    map.set(key, value);
  };
}

installReflectMetadataShim();

import { createMemoryStore } from "./memory_store.ts";
import { runStoreContract } from "./store_contract.ts";

runStoreContract(
  "memory",
  (options) => Promise.resolve({ store: createMemoryStore(options), cleanup: () => Promise.resolve() }),
);

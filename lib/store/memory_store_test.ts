import { createMemoryStore } from "./memory_store.ts";
import { runStoreContract } from "./store_contract.ts";

runStoreContract("memory", () => Promise.resolve({ store: createMemoryStore(), cleanup: () => Promise.resolve() }));

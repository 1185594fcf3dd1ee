// What the runner (bench/peers.ts) and the peers' processes (serve-peer.ts) agree on, in a module
// that imports nothing: the runner reads it without loading any peer's libraries (Mastra's alone
// took 0.8 s and 136 MB of the runner's memory to import).

/**
 * The index Mastra's Memory asks its vector store for with the local embedder (512 dimensions):
 * "memory", "messages" and the dimension, joined by PineconeVector's separator. The runner
 * starts the Pinecone stand-in of mastra-managed with this index.
 */
export const MASTRA_PINECONE_INDEX = { name: "memory-messages-512", dimension: 512 };

/** A setting the runner passes a peer in its environment; throws, naming the peer and the variable, when it is missing. */
export function peerEnv(peer: string, name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${peer}: set ${name}`);
  return v;
}

// Types of the Catalyst Node SDK. `test/sdk.test.js` checks that every method here exists on the
// native class and the other way round.

export type Json = Record<string, any>;

export declare class CatalystError extends Error {
  code: string;
}

/** A live feed of a server's events or console lines; `close()` ends it, even mid-wait. */
export interface Feed extends AsyncGenerator<Json, void, undefined> {
  close(): void;
}

export declare class Catalyst {
  static embedded(databaseUrl: string, options?: { dataDir?: string; localNode?: 'process' | 'containerd' | 'auto'; allowUnconfined?: boolean }): Promise<Catalyst>;
  static connect(url: string, credential: string): Catalyst;
  static login(url: string, email: string, password: string): Promise<Catalyst>;
  /** Stop what this handle runs: an embedded control plane's node, tasks and connections. */
  close(): Promise<null>;
  /** `await using c = await Catalyst.embedded(...)` closes `c` at the end of the block. */
  [Symbol.asyncDispose](): Promise<null>;
  me(): Promise<Json>;
  createUser(user: Json): Promise<Json>;
  listLocations(): Promise<Json[]>;
  createLocation(location: Json): Promise<Json>;
  listNodes(offset?: number, limit?: number): Promise<Json>;
  createNode(node: Json): Promise<Json>;
  getNode(nodeId: string): Promise<Json>;
  /** Add ports to a node's allocation pool; resolves to how many were new. */
  addAllocations(nodeId: string, allocations: { ip: string; ports: string[]; alias?: string; notes?: string }): Promise<number>;
  listAllocations(nodeId: string, offset?: number, limit?: number): Promise<Json>;
  updateAllocation(nodeId: string, number: number, patch: { alias?: string; notes?: string }): Promise<Json>;
  deleteAllocation(nodeId: string, number: number): Promise<null>;
  createTemplate(template: Json): Promise<Json>;
  importTemplate(egg: string | Buffer): Promise<Json>;
  exportTemplate(templateId: string, format?: 'ptdl_v2' | 'plcn_v3'): Promise<string>;
  listTemplates(offset?: number, limit?: number): Promise<Json>;
  createServer(server: Json): Promise<Json>;
  getServer(serverId: string): Promise<Json>;
  listServers(offset?: number, limit?: number): Promise<Json>;
  updateServer(serverId: string, patch: Json): Promise<Json>;
  deleteServer(serverId: string): Promise<null>;
  start(serverId: string): Promise<Json>;
  stop(serverId: string): Promise<Json>;
  restart(serverId: string): Promise<Json>;
  kill(serverId: string): Promise<Json>;
  sendCommand(serverId: string, command: string): Promise<null>;
  suspend(serverId: string): Promise<Json>;
  unsuspend(serverId: string): Promise<Json>;
  logs(serverId: string, query?: Json): Promise<Json[]>;
  createBackup(serverId: string, name?: string): Promise<Json>;
  listBackups(serverId: string): Promise<Json[]>;
  restoreBackup(serverId: string, backupId: string): Promise<Json>;
  deleteBackup(serverId: string, backupId: string): Promise<null>;
  /** Subscribe to a server's events (console lines after `since` replayed first). */
  events(serverId: string, since?: number): Promise<Feed>;
  /** Subscribe to a server's console lines (those after `since` first). */
  console(serverId: string, since?: number): Promise<Feed>;
}

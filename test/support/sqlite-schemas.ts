/** The current SQLite SCHEMA without rooms.keys_after (version 5): the rooms table as older versions wrote it, for migration tests. */
export function withoutKeysAfter(schema: string): string {
  const older = schema.replace(/,\n(\s*--[^\n]*\n)*\s*keys_after\s+INTEGER NOT NULL DEFAULT 0/, "");
  if (older === schema) throw new Error("SCHEMA has no rooms.keys_after to remove");
  return older;
}

/**
 * NeDB (the store without MONGO_URI) appends one line per written document with `fs.promises.appendFile`: open,
 * write and close, three trips through libuv's small thread pool for every write, which made writes queue under load
 * with idle cores.
 *
 * This keeps the file open and appends with one synchronous write (to the page cache: NeDB never fsyncs an append,
 * so durability is unchanged). A compaction replaces the file: the descriptor is closed then and reopened on the next
 * append, so no line lands in the replaced file. NeDB runs compactions and writes one at a time, so none interleave.
 *
 * It also compacts by growth, not only on NeDB's timer: every update appends the whole document again, so a small
 * collection written often (a hot product's stock) grew by hundreds of MB between two timed compactions. Once the
 * lines appended since the last compaction pass COMPACT_AFTER_BYTES and twice the compacted file's size, a
 * compaction is queued behind the current write.
 */
import { createRequire } from "node:module";
import fs from "node:fs";
import { type PatchTarget, outOfRange, warnSkipped } from "./target";

/** lib/persistence.js and lib/model.js are NeDB's internals, and the line format is its own: pinned to the minor. */
export const TARGET: PatchTarget = { package: "@seald-io/nedb", range: "~3.1.0" };

interface NeDbPersistence {
	filename: string;
	inMemoryOnly: boolean;
	modes: { fileMode: number };
	afterSerialization(s: string): string;
	persistNewStateAsync(docs: object[]): Promise<void>;
	persistCachedDatabaseAsync(): Promise<void>;
}

interface NeDbModel {
	serialize(doc: object): string;
}

/**
 * NeDB's own serializer (dates, `$$` fields), so the lines are exactly the ones it writes itself; or why the
 * internals are not what the patch was written against.
 */
export function probe(): NeDbModel | string {
	try {
		const load = createRequire(require.resolve(TARGET.package));
		const Persistence = load("./lib/persistence") as { prototype?: Partial<NeDbPersistence> };
		const model = load("./lib/model") as Partial<NeDbModel>;
		const proto = Persistence.prototype;
		if (typeof model.serialize !== "function") return "model.serialize is missing";
		if (typeof proto?.persistNewStateAsync !== "function") {
			return "Persistence.prototype.persistNewStateAsync is missing";
		}
		if (typeof proto.persistCachedDatabaseAsync !== "function") {
			return "Persistence.prototype.persistCachedDatabaseAsync is missing";
		}
		// The replaced append must be the one this mirrors: one serialized line per document, appended to the file.
		const source = String(proto.persistNewStateAsync);
		for (const part of ["afterSerialization(model.serialize(doc))", "'\\n'", "appendFile"]) {
			if (!source.includes(part)) return `persistNewStateAsync no longer uses ${part}`;
		}
		return model as NeDbModel;
	} catch (err) {
		return `NeDB internals not found (${(err as Error).message})`;
	}
}

/** The serializer when the patch applies here, else null (checked once a process). */
let checked: NeDbModel | null | undefined;
function serializer(): NeDbModel | null {
	if (checked !== undefined) return checked;
	const found = outOfRange(TARGET) ?? probe();
	checked = typeof found === "string" ? null : found;
	if (typeof found === "string") warnSkipped("nedb-appends", found);
	return checked;
}

/** Appended bytes after which a compaction is due (when they also exceed twice the last compacted size). */
export const COMPACT_AFTER_BYTES = 4 * 1024 * 1024;

interface NeDbDatastore {
	persistence?: NeDbPersistence;
	compactDatafileAsync?(): Promise<void>;
}

/** The close function of every datastore patched here. */
const closers = new WeakMap<object, () => void>();

/**
 * Makes a NeDB datastore append through a descriptor it keeps open (see above). Idempotent; true when the datastore
 * appends this way, false when it keeps NeDB's own appends (in memory only, or another NeDB).
 */
export function keepDatafileOpen(db: NeDbDatastore): boolean {
	const p = db.persistence;
	if (closers.has(db)) return true;
	if (!p || p.inMemoryOnly) return false;
	const model = serializer();
	if (!model) return false;
	let fd: number | null = null;
	let appended = 0;
	let compactedSize = fileSize(p.filename);
	let compactionQueued = false;
	const close = () => {
		if (fd === null) return;
		try {
			fs.closeSync(fd);
		} catch {
			// Already closed: nothing to release.
		}
		fd = null;
	};
	p.persistNewStateAsync = async (docs: object[]) => {
		let lines = "";
		for (const doc of docs) lines += `${p.afterSerialization(model.serialize(doc))}\n`;
		if (lines.length === 0) return;
		fd ??= fs.openSync(p.filename, "a", p.modes.fileMode);
		const buffer = Buffer.from(lines, "utf8");
		let written = 0;
		while (written < buffer.length) written += fs.writeSync(fd, buffer, written);
		appended += buffer.length;
		if (
			!compactionQueued &&
			appended > COMPACT_AFTER_BYTES &&
			appended > 2 * compactedSize &&
			typeof db.compactDatafileAsync === "function"
		) {
			// Queued on NeDB's executor, so it runs after this write and before the next.
			compactionQueued = true;
			void db.compactDatafileAsync().catch(() => undefined);
		}
	};
	const rewrite = p.persistCachedDatabaseAsync.bind(p);
	p.persistCachedDatabaseAsync = async () => {
		close();
		try {
			await rewrite();
		} finally {
			compactionQueued = false;
			appended = 0;
			compactedSize = fileSize(p.filename);
		}
	};
	closers.set(db, close);
	return true;
}

/** Closes the descriptor kept by keepDatafileOpen (the service stops); a later append would reopen it. */
export function releaseDatafile(db: object): void {
	closers.get(db)?.();
}

function fileSize(file: string): number {
	try {
		return fs.statSync(file).size;
	} catch {
		return 0;
	}
}

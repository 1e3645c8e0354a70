/**
 * NeDB (the store without MONGO_URI) appends one line per written document to its file, and runs one operation at a
 * time per collection: every write waits for `fs.promises.appendFile`, i.e. open + write + close, three trips
 * through libuv's thread pool (4 threads shared by every collection of the node). Under load those trips, not the
 * CPU, made the order and cart writes queue (bench profile: openFileHandle/close/callbackify among the top self
 * times of orders, carts and inventory; checkout latency with idle cores).
 *
 * This keeps the file open and appends with one synchronous write of a few hundred bytes (to the page cache: the
 * same durability as before, NeDB never fsyncs an append; a killed process loses nothing the kernel already has).
 * A compaction replaces the file (write a temp file, rename): the descriptor is closed then and reopened on the
 * next append, so no line lands in the replaced file. NeDB runs compactions and writes one at a time, so none
 * interleave.
 */
import fs from "node:fs";

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

/** NeDB's own serializer (dates, `$$` fields), so the lines are exactly the ones it writes itself. */
const model = require("@seald-io/nedb/lib/model") as NeDbModel;

/** The close function of every datastore patched here. */
const closers = new WeakMap<object, () => void>();

/** Makes a NeDB datastore append through a descriptor it keeps open (see above). Idempotent. */
export function keepDatafileOpen(db: { persistence?: NeDbPersistence }): void {
	const p = db.persistence;
	if (!p || p.inMemoryOnly || closers.has(db)) return;
	let fd: number | null = null;
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
	};
	const rewrite = p.persistCachedDatabaseAsync.bind(p);
	p.persistCachedDatabaseAsync = async () => {
		close();
		await rewrite();
	};
	closers.set(db, close);
}

/** Closes the descriptor kept by keepDatafileOpen (the service stops); a later append would reopen it. */
export function releaseDatafile(db: object): void {
	closers.get(db)?.();
}

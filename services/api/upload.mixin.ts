/**
 * The gateway's side of `POST /api/products/:id/images`: takes the image from a multipart/form-data body (field
 * `file`) or from a raw body (any other Content-Type) and streams it to `media.upload` as a Moleculer stream, in
 * chunks small enough for NATS, counting the bytes on the way. A body announced or found to be over the limit is
 * answered with 413 at once and read no further; the media service sniffs the type and enforces the limit again.
 * The api service mixes this in; its `sendJson` and `sendContractError` write the answers.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { PassThrough, type Readable } from "node:stream";
import { Busboy, type BusboyHeaders } from "@fastify/busboy";
import type { Context, ServiceSchema } from "moleculer";
import { BadRequestError } from "../../lib/errors";
import { MAX_IMAGE_BYTES, imageTooLargeError } from "../../lib/image-type";
import { TRANSIT_CHUNK_BYTES } from "../../adapters/object-store";
import type { AppMeta } from "../../types/meta";

export interface UploadMixinOptions {
	/** The action that receives the stream (default `media.upload`). */
	action?: string;
	/** Largest file in bytes (default 5 MiB, API.md). */
	maxBytes?: number;
	/** The call's deadline in ms; it covers the client's transfer time too (default 60 s). */
	timeout?: number;
}

/** What the gateway has attached to a request by the time an alias handler runs. */
interface UploadRequest extends IncomingMessage {
	$ctx?: Context<unknown, AppMeta>;
	$params?: Record<string, unknown>;
}

/** The api service's methods this mixin relies on. */
interface UploadHost {
	sendJson(res: ServerResponse, status: number, body: unknown): void;
	sendContractError(req: UploadRequest, res: ServerResponse, err: unknown): void;
}

interface UploadBody {
	stream: Readable;
	filename?: string;
	declaredType?: string;
	/** Stops reading the request. */
	stop(): void;
}

/** How long an upload may take end to end (a slow client's 5 MiB): its deadline instead of REQUEST_TIMEOUT. */
export const UPLOAD_TIMEOUT_MS = 60_000;

/**
 * After an early answer the client may still be sending. Closing at once would reset the connection under it (most
 * clients then report a network error, not the answer), so the rest is read and thrown away, within these bounds.
 */
const LINGER_BYTES = 16 * 1024 * 1024;
const LINGER_MS = 10_000;

/** Boundaries and part headers around the file in a multipart body. */
const MULTIPART_OVERHEAD = 16 * 1024;
const MULTIPART = /^multipart\/form-data\b/i;

const aborted = () =>
	new BadRequestError("INVALID_REQUEST_BODY", "The upload was interrupted before it ended");

/** Reads and discards what is left of the request body (bounded), then lets the connection be reused. */
export function discardRest(req: IncomingMessage): void {
	if (req.complete || req.destroyed) return;
	let budget = LINGER_BYTES;
	const timer = setTimeout(() => req.destroy(), LINGER_MS);
	timer.unref();
	const done = () => clearTimeout(timer);
	req.on("data", (chunk: Buffer) => {
		budget -= chunk.length;
		if (budget < 0) {
			done();
			req.destroy();
		}
	});
	req.once("end", done);
	req.once("close", done);
	req.resume();
}

/** The `file` part of a multipart body, as soon as it starts (other parts are skipped). */
function multipartFile(req: UploadRequest, max: number): Promise<UploadBody> {
	return new Promise((resolve, reject) => {
		let busboy: ReturnType<typeof Busboy>;
		try {
			busboy = Busboy({
				headers: req.headers as BusboyHeaders,
				// A browser's or curl's part has a file name; a bare `file` part is still the file.
				isPartAFile: name => name === "file",
				limits: {
					files: 1,
					// One byte over the limit is enough to know it is over.
					fileSize: max + 1,
					fields: 10,
					fieldSize: 1024,
					parts: 20,
					headerPairs: 20
				}
			});
		} catch {
			return reject(
				new BadRequestError("INVALID_REQUEST_BODY", "Malformed multipart/form-data body")
			);
		}
		const stop = () => {
			req.unpipe(busboy);
			req.pause();
		};
		let file: Readable | null = null;
		busboy.on("file", (_name, stream, filename, _encoding, mimeType) => {
			file = stream;
			resolve({ stream, filename: filename || undefined, declaredType: mimeType, stop });
		});
		busboy.on("finish", () => {
			if (!file) {
				reject(
					new BadRequestError("INVALID_REQUEST_BODY", "The multipart body has no `file` part")
				);
			}
		});
		busboy.on("error", () => {
			if (file) return file.destroy(aborted());
			stop();
			reject(new BadRequestError("INVALID_REQUEST_BODY", "Malformed multipart/form-data body"));
		});
		req.pipe(busboy);
	});
}

/**
 * Copies `source` into `out` in pieces of at most TRANSIT_CHUNK_BYTES, honouring back-pressure and counting bytes.
 * Over `max`, or when the source breaks, `out` is destroyed with the error (Moleculer forwards it to the receiving
 * node as a stream error) and `failed` rejects with it.
 */
function forward(source: Readable, out: PassThrough, max: number) {
	let total = 0;
	let done = false;
	let fail!: (err: Error) => void;
	const failed = new Promise<never>((_resolve, reject) => (fail = reject));
	failed.catch(() => undefined);

	const detach = () => {
		done = true;
		source.off("data", onData);
		source.off("end", onEnd);
		source.off("error", onError);
		source.pause();
	};
	const abort = (err: Error) => {
		if (done) return;
		detach();
		out.destroy(err);
		fail(err);
	};
	const onData = (chunk: Buffer) => {
		total += chunk.length;
		if (total > max) return abort(imageTooLargeError(max));
		let writable = true;
		for (let i = 0; i < chunk.length; i += TRANSIT_CHUNK_BYTES) {
			writable = out.write(chunk.subarray(i, i + TRANSIT_CHUNK_BYTES));
		}
		if (!writable) {
			source.pause();
			out.once("drain", () => {
				if (!done) source.resume();
			});
		}
	};
	const onEnd = () => {
		if (done) return;
		detach();
		out.end();
	};
	const onError = () => abort(aborted());

	// Errors after the copy has stopped must not crash the gateway.
	source.on("error", () => undefined);
	out.on("error", () => undefined);
	source.on("data", onData);
	source.on("end", onEnd);
	source.on("error", onError);
	return {
		failed,
		abort,
		/** Stops copying; the receiver sees the end of the stream (it has already answered). */
		stop() {
			if (done) return;
			detach();
			out.end();
		}
	};
}

/** `handle_upload` for the api service: the gateway calls it after authentication and authorization. */
export function UploadMixin(opts: UploadMixinOptions = {}): Partial<ServiceSchema> {
	const action = opts.action ?? "media.upload";
	const max = opts.maxBytes ?? MAX_IMAGE_BYTES;
	const timeout = opts.timeout ?? UPLOAD_TIMEOUT_MS;

	return {
		methods: {
			async handle_upload(this: UploadHost, req: UploadRequest, res: ServerResponse) {
				let body: UploadBody | null = null;
				let copy: ReturnType<typeof forward> | null = null;
				const fail = (err: unknown) => {
					copy?.stop();
					body?.stop();
					if (!res.headersSent) this.sendContractError(req, res, err);
					discardRest(req);
				};
				try {
					const ctx = req.$ctx;
					if (!ctx) throw new Error("No request context");
					const multipart = MULTIPART.test(req.headers["content-type"] ?? "");
					const announced = Number(req.headers["content-length"]);
					if (announced > max + (multipart ? MULTIPART_OVERHEAD : 0)) {
						return fail(imageTooLargeError(max));
					}

					body = multipart
						? await multipartFile(req, max)
						: {
								stream: req,
								declaredType: req.headers["content-type"],
								stop: () => req.pause()
							};
					const out = new PassThrough({ highWaterMark: TRANSIT_CHUNK_BYTES });
					copy = forward(body.stream, out, max);
					const running = copy;
					res.once("close", () => {
						if (!res.writableFinished) running.abort(aborted());
					});

					const params: Record<string, string> = { productId: String(req.$params?.id ?? "") };
					if (body.filename) params.filename = body.filename.slice(0, 255);
					if (body.declaredType) params.declaredType = body.declaredType.slice(0, 255);
					const call = ctx.call<{ id: string; url: string }, Record<string, string>>(
						action,
						params,
						{
							stream: out,
							timeout
						}
					);
					call.catch(() => undefined);
					const image = await Promise.race([call, copy.failed]);
					res.setHeader("Location", image.url);
					this.sendJson(res, 201, image);
				} catch (err) {
					fail(err);
				}
			}
		}
	} as unknown as Partial<ServiceSchema>;
}

/**
 * Product images: the only owner of the object-store bucket and of the `images` collection. An upload arrives as a
 * Moleculer stream (the gateway's upload mixin sends it in small chunks), is sniffed by its magic bytes, counted
 * against the 5 MiB limit while it is read, stored under a key the server makes, then listed on its product.
 * Images are served by `get` as a stream with long-lived cache headers: an image never changes under its id.
 * The embedded mode starts its own S3 server on loopback (files under DATA_DIR/s3); the cluster mode talks to MinIO.
 */
import { randomUUID } from "node:crypto";
import { type Readable, pipeline } from "node:stream";
import type {
	Context,
	Service,
	ServiceSchema,
	ServiceSettingSchema,
	ServiceBroker
} from "moleculer";
import { type AppConfig, configOf } from "../config";
import { MoleculerClientError, NotFoundError, ServiceUnavailableError } from "../lib/errors";
import {
	type ImageType,
	MAX_IMAGE_BYTES,
	SNIFF_BYTES,
	detectImageType,
	imageTooLargeError,
	unsupportedImageError
} from "../lib/image-type";
import {
	type EmbeddedS3,
	type ObjectStore,
	inTransitChunks,
	resolveObjectStore
} from "../adapters/object-store";
import { DbMixin, type DbServiceThis } from "../mixins/db.mixin";
import type { AppMeta } from "../types/meta";
import type { AppAction } from "../types/moleculer-ext";

/** An image as stored: the bytes live in the bucket under `key`, never in the database. */
interface ImageDoc {
	_id: string;
	productId: string;
	key: string;
	contentType: ImageType["mime"];
	size: number;
	createdAt: string;
}

/** What clients see of an image (and what a product lists). */
export interface ProductImage {
	id: string;
	url: string;
}

interface UploadParams {
	productId: string;
	/** For the log only: the type is decided by the bytes, never by these. */
	filename?: string;
	declaredType?: string;
}
interface GetParams {
	imageId: string;
}
interface RemoveParams {
	id: string;
	imageId: string;
}

interface MediaMethods {
	storeCall<T>(what: string, op: () => Promise<T>): Promise<T>;
	discard(ctx: Context, doc: ImageDoc, cause: unknown): Promise<void>;
	connectStore(): Promise<void>;
}

interface MediaVars {
	store: ObjectStore;
	/** The loopback S3 server of the embedded mode; null when MinIO is configured. */
	embedded: EmbeddedS3 | null;
	/** PUBLIC_URL: the upload's answer carries its image's absolute URL. */
	publicUrl: string;
}

type MediaThis = Service & DbServiceThis & MediaVars & MediaMethods;

/** Product ids become part of object keys: no `/`, no `.`, nothing a file system could read as a path. */
const PRODUCT_ID = { type: "string", pattern: /^[A-Za-z0-9_-]{1,64}$/ } as const;
const ID = { type: "string", min: 1, max: 64 } as const;

/** An upload's deadline includes the client's transfer time (the gateway gives the call as long). */
const UPLOAD_TIMEOUT = 60_000;
/** Served bytes never change under an image id. */
const IMAGE_HEADERS = {
	"Cache-Control": "public, max-age=31536000, immutable",
	"Content-Security-Policy": "default-src 'none'",
	"Content-Disposition": "inline"
};
const BUCKET_ATTEMPTS = 10;

/** Products list an image by its path; answers make it absolute on PUBLIC_URL when they are sent, not stored. */
const imagePath = (imageId: string) => `/api/images/${imageId}`;

/** A 4xx error that crossed the transporter (the gateway aborting the upload stream) or a broken stream. */
function streamFailure(err: unknown): Error {
	const e = err as {
		name?: unknown;
		code?: unknown;
		type?: unknown;
		message?: unknown;
		data?: unknown;
	};
	if (typeof e?.code === "number" && e.code >= 400 && e.code < 500 && typeof e.type === "string") {
		const restored = new MoleculerClientError(String(e.message), e.code, e.type, e.data);
		if (typeof e.name === "string") restored.name = e.name;
		return restored;
	}
	return new MoleculerClientError("The upload did not complete", 400, "INVALID_REQUEST_BODY");
}

/**
 * Reads an upload into memory (at most `max` bytes), deciding its type from the first bytes: not an image → 415 at
 * once, past `max` → 413 at once; either way nothing is kept. Whatever is still arriving is drained, not buffered.
 */
function readImage(
	stream: Readable,
	max: number,
	deadlineMs: number
): Promise<{ body: Buffer; type: ImageType }> {
	// Errors that arrive after this read has settled must not crash the node.
	stream.on("error", () => undefined);
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		let size = 0;
		let type: ImageType | null | undefined;
		const settle = (err: Error | null) => {
			clearTimeout(timer);
			stream.off("data", onData);
			stream.off("end", onEnd);
			stream.off("error", onError);
			stream.resume();
			if (err) reject(err);
			else resolve({ body: Buffer.concat(chunks, size), type: type! });
		};
		const sniff = () => {
			type = detectImageType(Buffer.concat(chunks, size).subarray(0, SNIFF_BYTES));
			return type !== null;
		};
		const onData = (chunk: Buffer) => {
			size += chunk.length;
			if (size > max) return settle(imageTooLargeError(max));
			chunks.push(chunk);
			if (type === undefined && size >= SNIFF_BYTES && !sniff()) settle(unsupportedImageError());
		};
		const onEnd = () => {
			if (type === undefined && !sniff()) return settle(unsupportedImageError());
			settle(null);
		};
		const onError = (err: unknown) => settle(streamFailure(err));
		// The caller has given up by then; without this the transit's stream would wait forever.
		const timer = setTimeout(
			() => settle(new MoleculerClientError("The upload timed out", 400, "INVALID_REQUEST_BODY")),
			deadlineMs
		);
		stream.on("data", onData);
		stream.on("end", onEnd);
		stream.on("error", onError);
	});
}

const actions = {
	/**
	 * Stores an uploaded image (a stream) for a product and lists it there. The type comes from the bytes only.
	 * Order: sniff and count → store the object → record it → `products.addImage`; a failure undoes what was done.
	 */
	upload: {
		permissions: ["admin"],
		timeout: UPLOAD_TIMEOUT,
		params: {
			$$strict: "remove",
			productId: PRODUCT_ID,
			filename: { type: "string", max: 255, optional: true },
			declaredType: { type: "string", max: 255, optional: true }
		},
		async handler(this: MediaThis, ctx: Context<UploadParams, AppMeta>): Promise<ProductImage> {
			const stream = ctx.stream as Readable | null;
			if (!stream) {
				throw new MoleculerClientError(
					"The image must be sent as a stream",
					400,
					"INVALID_REQUEST_BODY"
				);
			}
			const { productId, filename, declaredType } = ctx.params;
			const deadline = (ctx.options.timeout ?? 0) > 0 ? ctx.options.timeout! : UPLOAD_TIMEOUT;
			let image: { body: Buffer; type: ImageType };
			try {
				image = await readImage(stream, MAX_IMAGE_BYTES, deadline);
			} catch (err) {
				this.logger.info("Upload refused", {
					productId,
					filename,
					declaredType,
					type: (err as { type?: unknown }).type
				});
				throw err;
			}

			const imageId = randomUUID();
			const doc: ImageDoc = {
				_id: imageId,
				productId,
				key: `products/${productId}/${imageId}.${image.type.ext}`,
				contentType: image.type.mime,
				size: image.body.length,
				createdAt: new Date().toISOString()
			};
			await this.storeCall("put", () => this.store.put(doc.key, image.body, doc.contentType));
			const listed: ProductImage = { id: imageId, url: imagePath(imageId) };
			try {
				await this.adapter.insert(doc);
				await ctx.call("products.addImage", { id: productId, image: listed });
			} catch (err) {
				await this.discard(ctx, doc, err);
				throw err;
			}
			this.logger.info("Image stored", {
				productId,
				imageId,
				contentType: doc.contentType,
				size: doc.size,
				declaredType
			});
			return { id: imageId, url: this.publicUrl + listed.url };
		}
	},

	/** An image's bytes as a stream, with its content type and cache headers. Public. */
	get: {
		params: { $$strict: "remove", imageId: ID },
		async handler(this: MediaThis, ctx: Context<GetParams, AppMeta>): Promise<Readable> {
			const doc = (await this.adapter.findById(ctx.params.imageId)) as ImageDoc | null;
			if (!doc) throw new NotFoundError("Image");
			const body = await this.storeCall("get", () => this.store.get(doc.key));
			if (!body) throw new NotFoundError("Image");
			ctx.meta.$responseType = doc.contentType;
			ctx.meta.$responseHeaders = { ...IMAGE_HEADERS, "Content-Length": String(doc.size) };
			const out = inTransitChunks();
			pipeline(body, out, err => {
				if (err) this.logger.warn("Streaming an image failed", { imageId: doc._id }, err);
			});
			return out;
		}
	},

	/** Takes an image off its product and deletes it. 404 when the image is not that product's. */
	remove: {
		permissions: ["admin"],
		params: { $$strict: "remove", id: ID, imageId: ID },
		async handler(this: MediaThis, ctx: Context<RemoveParams, AppMeta>): Promise<null> {
			const { id, imageId } = ctx.params;
			const doc = (await this.adapter.findById(imageId)) as ImageDoc | null;
			if (!doc || doc.productId !== id) throw new NotFoundError("Image");
			try {
				await ctx.call("products.removeImage", { id, imageId });
			} catch (err) {
				// Already off the product (an earlier removal stopped half-way): finish the clean-up.
				if ((err as { type?: unknown }).type !== "NOT_FOUND") throw err;
			}
			await this.storeCall("remove", () => this.store.remove(doc.key));
			await this.adapter.removeById(imageId);
			this.logger.info("Image removed", { productId: id, imageId });
			ctx.meta.$statusCode = 204;
			return null;
		}
	},

	/** Whether the images collection and the bucket both answer; `/ready` and `/api/health` call it. */
	health: {
		visibility: "public",
		timeout: 2000,
		async handler(this: MediaThis): Promise<{ status: "up" }> {
			try {
				await this.adapter.count({ query: { _id: "__health__" } });
				if (!(await this.store.reachable())) throw new Error("bucket missing");
				return { status: "up" };
			} catch (err) {
				this.logger.warn("Media health check failed", err);
				throw new ServiceUnavailableError("Media store unreachable");
			}
		}
	}
} satisfies Record<string, AppAction<MediaThis>>;

export function createMediaService(
	cfg: AppConfig
): ServiceSchema<ServiceSettingSchema, MediaMethods, DbServiceThis & MediaVars> {
	return {
		name: "media",
		mixins: [
			DbMixin(cfg, {
				collection: "images",
				indexes: [{ fields: { productId: 1 } }, { fields: { key: 1 }, unique: true }]
			})
		],
		actions,

		methods: {
			/** Runs an object-store operation; a failure of the store is a 503 to the client, never a 500. */
			async storeCall<T>(this: MediaThis, what: string, op: () => Promise<T>): Promise<T> {
				try {
					return await op();
				} catch (err) {
					this.logger.warn(`Object store '${what}' failed`, err);
					throw new ServiceUnavailableError("Object store unavailable");
				}
			},

			/** Undoes an upload whose listing failed: no orphan object or record is left behind. */
			async discard(this: MediaThis, ctx: Context, doc: ImageDoc, cause: unknown): Promise<void> {
				const code = (cause as { code?: unknown }).code;
				if (typeof code !== "number" || code >= 500) {
					// A timeout may hide a listing that did happen: take it off again (404 when it did not).
					await ctx
						.call("products.removeImage", { id: doc.productId, imageId: doc._id })
						.catch(() => undefined);
				}
				await this.adapter.removeById(doc._id).catch(() => undefined);
				try {
					await this.store.remove(doc.key);
				} catch (err) {
					this.logger.error("An unlisted image could not be deleted", { key: doc.key }, err);
				}
			},

			/**
			 * The bucket, created when missing. MinIO may still be starting when this node starts: a few tries with
			 * back-off before the start fails.
			 */
			async connectStore(this: MediaThis): Promise<void> {
				({ store: this.store, embedded: this.embedded } = await resolveObjectStore(cfg));
				if (this.embedded) {
					this.logger.info(`Embedded S3 server on 127.0.0.1:${this.embedded.port}`);
				}
				for (let attempt = 1; ; attempt++) {
					try {
						await this.store.ensureBucket();
						return;
					} catch (err) {
						if (attempt >= BUCKET_ATTEMPTS) throw err;
						this.logger.warn(
							`Object store not ready (attempt ${attempt}/${BUCKET_ATTEMPTS}): ${(err as Error).message}`
						);
						await new Promise(resolve => setTimeout(resolve, Math.min(250 * 2 ** attempt, 5000)));
					}
				}
			}
		},

		created(this: MediaThis) {
			this.embedded = null;
			this.publicUrl = cfg.gateway.publicUrl;
		},

		async started(this: MediaThis) {
			await this.connectStore();
		},

		async stopped(this: MediaThis) {
			await this.embedded?.close();
			this.embedded = null;
		}
	};
}

/** Moleculer's loader calls this with the broker; the configuration comes with the broker's options. */
export default (broker: ServiceBroker) => createMediaService(configOf(broker));

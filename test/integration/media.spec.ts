/**
 * API.md's product images over real HTTP: a gateway, a media node, a products node (with users and inventory) on a
 * real nats-server, and a real S3 server over HTTP (@20minutes/s3rver, SigV4 checked) that the media node reaches
 * with MINIO_* credentials, as it would reach MinIO. The bucket is inspected with the MinIO client.
 */
import { randomBytes } from "node:crypto";
import { Client } from "minio";
import { type EmbeddedS3, startEmbeddedS3 } from "../../adapters/object-store";
import { stopAll, tempDir } from "../../scripts/lib/cluster";
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";

/** Where clients reach the gateway, as the cluster's PUBLIC_URL: image URLs are absolute on it. */
const PUBLIC_URL = "https://media.example.test";
const ADMIN = { email: "media-admin@flashmart.test", password: "media-admin-pw" };
const MiB = 1024 * 1024;

/** A real 1x1 PNG. */
const PNG = Buffer.from(
	"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
	"base64"
);
/** A real 1x1 GIF. */
const GIF = Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64");
/** A JPEG header and padding: the type is decided by the magic bytes. */
const jpeg = (size: number, fill = 0x5a) => {
	const buf = Buffer.alloc(size, fill);
	Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00]).copy(buf);
	buf[size - 2] = 0xff;
	buf[size - 1] = 0xd9;
	return buf;
};
const WEBP = Buffer.concat([
	Buffer.from("RIFF"),
	Buffer.from([0x1c, 0, 0, 0]),
	Buffer.from("WEBPVP8L"),
	randomBytes(20)
]);
const HTML = Buffer.from(
	"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
);

const ERROR_NAMES: Record<number, string> = {
	413: "PayloadTooLargeError",
	415: "UnsupportedMediaTypeError"
};

function expectError(res: { status: number; body: any }, status: number, type: string) {
	expect(res.status).toBe(status);
	expect(res.body).toMatchObject({ code: status, type, requestId: expect.any(String) });
	if (ERROR_NAMES[status]) expect(res.body.name).toBe(ERROR_NAMES[status]);
	expect(JSON.stringify(res.body)).not.toMatch(/stack|node_modules/);
}

/** A request body sent in pieces with chunked transfer encoding: no Content-Length to refuse it early. */
function streamOf(buf: Buffer, piece = 256 * 1024): ReadableStream<Uint8Array> {
	let at = 0;
	return new ReadableStream({
		pull(controller) {
			if (at >= buf.length) return controller.close();
			controller.enqueue(buf.subarray(at, (at += piece)));
		}
	});
}

/** A multipart/form-data body with one part, built by hand (so it can also be streamed). */
function multipart(bytes: Buffer, opts: { field?: string; filename?: string; type?: string } = {}) {
	const boundary = `----flashmart${randomBytes(8).toString("hex")}`;
	const head =
		`--${boundary}\r\nContent-Disposition: form-data; name="${opts.field ?? "file"}"` +
		(opts.filename ? `; filename="${opts.filename}"` : "") +
		`\r\nContent-Type: ${opts.type ?? "application/octet-stream"}\r\n\r\n`;
	return {
		body: Buffer.concat([Buffer.from(head), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]),
		contentType: `multipart/form-data; boundary=${boundary}`
	};
}

async function parsed(res: Response) {
	const text = await res.text();
	let body: any = text;
	try {
		body = text ? JSON.parse(text) : null;
	} catch {
		// not JSON
	}
	return { status: res.status, headers: res.headers, body };
}

describe("product images over a cluster", () => {
	let cluster: TestCluster;
	let s3: EmbeddedS3;
	let s3Client: Client;
	let admin: string;
	let customer: string;
	let productId: string;
	const bucket = `it-media-${randomBytes(4).toString("hex")}`;
	const credentials = {
		accessKey: `itkey${randomBytes(6).toString("hex")}`,
		secretKey: randomBytes(18).toString("base64url")
	};

	const imagesUrl = (id = productId) => `${cluster.base}/api/products/${id}/images`;

	/** POST raw bytes (Content-Length set, or chunked when `chunked`). */
	const uploadRaw = async (
		bytes: Buffer,
		contentType: string,
		opts: { token?: string | null; product?: string; chunked?: boolean } = {}
	) => {
		const token = opts.token === undefined ? admin : opts.token;
		const init: RequestInit & { duplex?: "half" } = {
			method: "POST",
			headers: {
				"Content-Type": contentType,
				...(token ? { Authorization: `Bearer ${token}` } : {})
			},
			body: opts.chunked ? streamOf(bytes) : bytes,
			duplex: "half"
		};
		return parsed(await fetch(imagesUrl(opts.product), init));
	};

	/** POST a multipart/form-data body the way a browser does (FormData with a Blob). */
	const uploadForm = async (bytes: Buffer, filename: string, type: string) => {
		const form = new FormData();
		form.append("file", new Blob([bytes], { type }), filename);
		return parsed(
			await fetch(imagesUrl(), {
				method: "POST",
				headers: { Authorization: `Bearer ${admin}` },
				body: form
			})
		);
	};

	const listKeys = async (): Promise<string[]> => {
		const keys: string[] = [];
		for await (const item of s3Client.listObjectsV2(bucket, "", true)) {
			if ((item as { name?: string }).name) keys.push((item as { name: string }).name);
		}
		return keys.sort();
	};

	const productImages = async (id = productId) => {
		const res = await api(cluster.base, "GET", `/api/products/${id}`);
		expect(res.status).toBe(200);
		return res.body.images as Array<{ id: string; url: string }>;
	};

	let sku = 0;
	const newProduct = async () => {
		const res = await api(cluster.base, "POST", "/api/products", {
			token: admin,
			body: {
				sku: `MEDIA-${Date.now()}-${sku++}`,
				name: "Media Lamp",
				price: 1999,
				category: "testing"
			}
		});
		expect(res.status).toBe(201);
		return res.body.id as string;
	};

	beforeAll(async () => {
		s3 = await startEmbeddedS3({ directory: tempDir("s3"), ...credentials });
		s3Client = new Client({
			endPoint: s3.endpoint,
			port: s3.port,
			useSSL: false,
			region: "us-east-1",
			...credentials
		});
		cluster = await startCluster({
			services: ["users", "products", "inventory", "media"],
			env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, PUBLIC_URL },
			envFor: {
				media: {
					MINIO_ENDPOINT: s3.endpoint,
					MINIO_PORT: String(s3.port),
					MINIO_ACCESS_KEY: credentials.accessKey,
					MINIO_SECRET_KEY: credentials.secretKey,
					MINIO_BUCKET: bucket
				}
			}
		});
		admin = (await api(cluster.base, "POST", "/api/auth/login", { body: ADMIN })).body.accessToken;
		customer = (
			await api(cluster.base, "POST", "/api/auth/register", {
				body: {
					email: `media-shopper-${Date.now()}@example.com`,
					password: "shopper-password",
					name: "Shopper"
				}
			})
		).body.accessToken;
		expect(admin).toEqual(expect.any(String));
		expect(customer).toEqual(expect.any(String));
		productId = await newProduct();
	}, 90_000);

	afterAll(async () => {
		// Also what a cluster that failed to start has left running.
		await stopAll();
		await s3?.close();
	});

	it("creates its bucket on the S3 server, which checks request signatures", async () => {
		expect(await s3Client.bucketExists(bucket)).toBe(true);
		const forger = new Client({
			endPoint: s3.endpoint,
			port: s3.port,
			useSSL: false,
			region: "us-east-1",
			accessKey: credentials.accessKey,
			secretKey: "not-the-secret-key"
		});
		await expect(
			forger.putObject(bucket, "forged.png", PNG, PNG.length, { "Content-Type": "image/png" })
		).rejects.toMatchObject({ code: "SignatureDoesNotMatch" });
		expect(await listKeys()).not.toContain("forged.png");
	});

	describe("POST /api/products/:id/images", () => {
		it("stores a PNG sent as multipart/form-data and serves it to anyone", async () => {
			const res = await uploadForm(PNG, "pixel.png", "image/png");
			expect(res.status).toBe(201);
			expect(res.body).toEqual({
				id: expect.any(String),
				url: `${PUBLIC_URL}/api/images/${res.body.id}`
			});
			expect(res.headers.get("location")).toBe(res.body.url);

			const got = await fetch(`${cluster.base}${new URL(res.body.url).pathname}`);
			expect(got.status).toBe(200);
			expect(got.headers.get("content-type")).toBe("image/png");
			expect(got.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
			expect(got.headers.get("content-security-policy")).toBe("default-src 'none'");
			expect(got.headers.get("x-content-type-options")).toBe("nosniff");
			expect(Buffer.from(await got.arrayBuffer()).equals(PNG)).toBe(true);

			expect(await productImages()).toContainEqual(res.body);
			expect(await listKeys()).toContain(`products/${productId}/${res.body.id}.png`);
		});

		it("stores a JPEG sent as the raw body", async () => {
			const bytes = jpeg(3000);
			const res = await uploadRaw(bytes, "image/jpeg");
			expect(res.status).toBe(201);
			const got = await fetch(`${cluster.base}${new URL(res.body.url).pathname}`);
			expect(got.status).toBe(200);
			expect(got.headers.get("content-type")).toBe("image/jpeg");
			expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
			expect(await productImages()).toContainEqual(res.body);
			expect(await listKeys()).toContain(`products/${productId}/${res.body.id}.jpg`);
		});

		it("decides GIF and WebP from the bytes, whatever the request declares", async () => {
			for (const [bytes, type, declared] of [
				[GIF, "image/gif", "application/octet-stream"],
				[WEBP, "image/webp", "image/png"]
			] as const) {
				const res = await uploadRaw(bytes, declared);
				expect(res.status).toBe(201);
				const got = await fetch(`${cluster.base}${new URL(res.body.url).pathname}`);
				expect(got.headers.get("content-type")).toBe(type);
				expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
			}
		});

		it("takes an image of exactly 5 MiB, streamed over NATS in chunks it accepts", async () => {
			// 0xFF bytes are the JSON serializer's worst case (4 characters each).
			const bytes = jpeg(5 * MiB, 0xff);
			const res = await uploadRaw(bytes, "image/jpeg", { chunked: true });
			expect(res.status).toBe(201);
			const got = await fetch(`${cluster.base}${new URL(res.body.url).pathname}`);
			expect(got.status).toBe(200);
			expect(got.headers.get("content-length")).toBe(String(5 * MiB));
			expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
		});

		it("refuses HTML labelled as a PNG with 415 and stores nothing", async () => {
			const before = await listKeys();
			const imagesBefore = await productImages();

			expectError(await uploadRaw(HTML, "image/png"), 415, "UNSUPPORTED_MEDIA_TYPE");
			const form = multipart(HTML, { filename: "photo.png", type: "image/png" });
			expectError(await uploadRaw(form.body, form.contentType), 415, "UNSUPPORTED_MEDIA_TYPE");
			// A truncated PNG header is not an image either.
			expectError(await uploadRaw(PNG.subarray(0, 6), "image/png"), 415, "UNSUPPORTED_MEDIA_TYPE");

			expect(await listKeys()).toEqual(before);
			expect(await productImages()).toEqual(imagesBefore);
		});

		it("refuses 6 MiB with 413, announced or streamed, raw or multipart, and stores nothing", async () => {
			const before = await listKeys();
			const imagesBefore = await productImages();
			const big = jpeg(6 * MiB);

			// Announced by Content-Length: refused before the body is read.
			expectError(await uploadRaw(big, "image/jpeg"), 413, "PAYLOAD_TOO_LARGE");
			// Chunked: refused while streaming, once past the limit.
			expectError(await uploadRaw(big, "image/jpeg", { chunked: true }), 413, "PAYLOAD_TOO_LARGE");
			const form = multipart(big, { filename: "big.jpg", type: "image/jpeg" });
			expectError(await uploadRaw(form.body, form.contentType), 413, "PAYLOAD_TOO_LARGE");
			expectError(
				await uploadRaw(form.body, form.contentType, { chunked: true }),
				413,
				"PAYLOAD_TOO_LARGE"
			);

			expect(await listKeys()).toEqual(before);
			expect(await productImages()).toEqual(imagesBefore);
		});

		it("answers 400 for a multipart body without a `file` part", async () => {
			const form = multipart(PNG, { field: "picture", filename: "pixel.png", type: "image/png" });
			expectError(await uploadRaw(form.body, form.contentType), 400, "INVALID_REQUEST_BODY");
		});

		it("is for admins only: 401 without a token, 403 for a customer", async () => {
			expectError(await uploadRaw(PNG, "image/png", { token: null }), 401, "NO_TOKEN");
			expectError(await uploadRaw(PNG, "image/png", { token: customer }), 403, "FORBIDDEN");
		});

		it("answers 404 for an unknown or archived product and leaves no object behind", async () => {
			const before = await listKeys();
			expectError(
				await uploadRaw(PNG, "image/png", { product: "no-such-product" }),
				404,
				"NOT_FOUND"
			);
			const archived = await newProduct();
			expect(
				(await api(cluster.base, "DELETE", `/api/products/${archived}`, { token: admin })).status
			).toBe(204);
			expectError(await uploadRaw(PNG, "image/png", { product: archived }), 404, "NOT_FOUND");
			expect(await listKeys()).toEqual(before);
		});
	});

	describe("GET /api/images/:imageId", () => {
		it("answers 404 for an unknown image", async () => {
			expectError(await api(cluster.base, "GET", "/api/images/no-such-image"), 404, "NOT_FOUND");
		});
	});

	describe("DELETE /api/products/:id/images/:imageId", () => {
		it("removes the image from the product and the bucket", async () => {
			const { body: image } = await uploadRaw(PNG, "image/png");
			const key = `products/${productId}/${image.id}.png`;
			expect(await listKeys()).toContain(key);

			// Not this product's image, a customer, no token: refused, and the image stays.
			const other = await newProduct();
			expectError(
				await api(cluster.base, "DELETE", `/api/products/${other}/images/${image.id}`, {
					token: admin
				}),
				404,
				"NOT_FOUND"
			);
			expectError(
				await api(cluster.base, "DELETE", `/api/products/${productId}/images/${image.id}`, {
					token: customer
				}),
				403,
				"FORBIDDEN"
			);
			expectError(
				await api(cluster.base, "DELETE", `/api/products/${productId}/images/${image.id}`),
				401,
				"NO_TOKEN"
			);
			expect((await fetch(`${cluster.base}${new URL(image.url).pathname}`)).status).toBe(200);

			const res = await api(
				cluster.base,
				"DELETE",
				`/api/products/${productId}/images/${image.id}`,
				{ token: admin }
			);
			expect(res.status).toBe(204);
			expectError(await api(cluster.base, "GET", new URL(image.url).pathname), 404, "NOT_FOUND");
			expect(await listKeys()).not.toContain(key);
			expect(await productImages()).not.toContainEqual(image);
			expectError(
				await api(cluster.base, "DELETE", `/api/products/${productId}/images/${image.id}`, {
					token: admin
				}),
				404,
				"NOT_FOUND"
			);
		});
	});
});

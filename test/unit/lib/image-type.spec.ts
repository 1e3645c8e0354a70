import { MAX_IMAGE_BYTES, SNIFF_BYTES, detectImageType } from "../../../lib/image-type";

const bytes = (...parts: Array<number[] | string>) =>
	Buffer.concat(
		parts.map(p => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p)))
	);

const PNG = bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], [0, 0, 0, 13], "IHDR");
const JPEG = bytes([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10], "JFIF\0", [1, 1]);
const GIF87 = bytes("GIF87a", [1, 0, 1, 0, 0, 0]);
const GIF89 = bytes("GIF89a", [1, 0, 1, 0, 0x80, 0]);
const WEBP = bytes("RIFF", [0x24, 0, 0, 0], "WEBP", "VP8 ");

describe("detectImageType", () => {
	it("detects each allowed format from its magic bytes", () => {
		expect(detectImageType(PNG)).toEqual({ mime: "image/png", ext: "png" });
		expect(detectImageType(JPEG)).toEqual({ mime: "image/jpeg", ext: "jpg" });
		expect(detectImageType(GIF87)).toEqual({ mime: "image/gif", ext: "gif" });
		expect(detectImageType(GIF89)).toEqual({ mime: "image/gif", ext: "gif" });
		expect(detectImageType(WEBP)).toEqual({ mime: "image/webp", ext: "webp" });
	});

	it("decides from the first SNIFF_BYTES bytes", () => {
		expect(SNIFF_BYTES).toBe(12);
		expect(detectImageType(WEBP.subarray(0, SNIFF_BYTES))?.ext).toBe("webp");
		expect(MAX_IMAGE_BYTES).toBe(5 * 1024 * 1024);
	});

	it("refuses HTML, SVG and text, whatever a file name or header would claim", () => {
		// What a client would upload as "photo.png" with Content-Type image/png: the bytes decide.
		const html = Buffer.from("<!doctype html><html><script>alert(1)</script></html>");
		expect(detectImageType(html)).toBeNull();
		expect(detectImageType(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeNull();
		expect(detectImageType(Buffer.from("just some plain text, nothing to see"))).toBeNull();
		expect(detectImageType(Buffer.from("%PDF-1.7\n%âãÏÓ\n"))).toBeNull();
	});

	it("refuses truncated headers", () => {
		expect(detectImageType(Buffer.alloc(0))).toBeNull();
		expect(detectImageType(PNG.subarray(0, 7))).toBeNull();
		expect(detectImageType(JPEG.subarray(0, 2))).toBeNull();
		expect(detectImageType(GIF89.subarray(0, 5))).toBeNull();
		expect(detectImageType(WEBP.subarray(0, 11))).toBeNull();
	});

	it("refuses near misses of the signatures", () => {
		const png = Buffer.from(PNG);
		png[7] = 0x0b;
		expect(detectImageType(png)).toBeNull();
		expect(detectImageType(bytes("GIF88a", [0, 0, 0, 0, 0, 0]))).toBeNull();
		// A RIFF container that is not WebP (a WAV file).
		expect(detectImageType(bytes("RIFF", [0x24, 0, 0, 0], "WAVEfmt "))).toBeNull();
		// "WEBP" at the wrong offset.
		expect(detectImageType(bytes("RIFFWEBP", [0, 0, 0, 0]))).toBeNull();
		expect(detectImageType(bytes([0xff, 0xd9, 0xff, 0xe0]))).toBeNull();
	});
});

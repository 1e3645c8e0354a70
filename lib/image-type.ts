/**
 * Which image a byte string is, decided by its magic bytes alone: never by a file name or a declared
 * Content-Type, which the client controls. Only the formats API.md allows (JPEG, PNG, GIF, WebP) are known.
 * Also the two errors an upload can end with, shared by the gateway and the media service.
 */
import { MoleculerClientError } from "./errors";

export interface ImageType {
	/** The content type the object is stored and served with. */
	mime: "image/jpeg" | "image/png" | "image/gif" | "image/webp";
	/** The object key's extension. */
	ext: "jpg" | "png" | "gif" | "webp";
}

/** API.md: an image is at most 5 MiB. */
export const MAX_IMAGE_BYTES = 5 * 1024 * 1024;

/** How many leading bytes decide the type (WebP's header is the longest: "RIFF" size "WEBP"). */
export const SNIFF_BYTES = 12;

const JPEG: ImageType = { mime: "image/jpeg", ext: "jpg" };
const PNG: ImageType = { mime: "image/png", ext: "png" };
const GIF: ImageType = { mime: "image/gif", ext: "gif" };
const WEBP: ImageType = { mime: "image/webp", ext: "webp" };

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_SOI = [0xff, 0xd8, 0xff];
const ascii = (s: string) => [...s].map(c => c.charCodeAt(0));
const GIF87A = ascii("GIF87a");
const GIF89A = ascii("GIF89a");
const RIFF = ascii("RIFF");
const WEBP_TAG = ascii("WEBP");

/** Whether `bytes` holds `signature` at `offset` (a truncated header never matches). */
function has(bytes: Uint8Array, signature: number[], offset = 0): boolean {
	if (bytes.length < offset + signature.length) return false;
	return signature.every((b, i) => bytes[offset + i] === b);
}

/** The image type of a file that starts with `head` (its first SNIFF_BYTES bytes or more), or null. */
export function detectImageType(head: Uint8Array): ImageType | null {
	if (has(head, JPEG_SOI)) return JPEG;
	if (has(head, PNG_SIGNATURE)) return PNG;
	if (has(head, GIF87A) || has(head, GIF89A)) return GIF;
	if (has(head, RIFF) && has(head, WEBP_TAG, 8)) return WEBP;
	return null;
}

/** 415: the bytes are not one of the allowed image formats. */
export function unsupportedImageError(): InstanceType<typeof MoleculerClientError> {
	const err = new MoleculerClientError(
		"Only JPEG, PNG, GIF and WebP images are accepted",
		415,
		"UNSUPPORTED_MEDIA_TYPE"
	);
	err.name = "UnsupportedMediaTypeError";
	return err;
}

/** 413: the upload is over `limit` bytes. */
export function imageTooLargeError(
	limit = MAX_IMAGE_BYTES
): InstanceType<typeof MoleculerClientError> {
	const err = new MoleculerClientError(
		`An image is at most ${limit} bytes`,
		413,
		"PAYLOAD_TOO_LARGE",
		{ limit }
	);
	err.name = "PayloadTooLargeError";
	return err;
}

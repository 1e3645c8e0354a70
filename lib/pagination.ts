/** API.md's list convention: `?page=1&pageSize=20` (pageSize at most 100) → `{ rows, total, page, pageSize, totalPages }`. */

export const PAGE_PARAMS = {
	page: { type: "number", convert: true, integer: true, min: 1, max: 100000, default: 1 },
	pageSize: { type: "number", convert: true, integer: true, min: 1, max: 100, default: 20 }
} as const;

export interface Page<T> {
	rows: T[];
	total: number;
	page: number;
	pageSize: number;
	totalPages: number;
}

export function pageOf<T>(rows: T[], total: number, page: number, pageSize: number): Page<T> {
	return { rows, total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
}

/** The store's `limit`/`offset` for a page. */
export function pageWindow(page: number, pageSize: number): { limit: number; offset: number } {
	return { limit: pageSize, offset: (page - 1) * pageSize };
}

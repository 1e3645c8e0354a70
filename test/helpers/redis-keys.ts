/** Lists the Redis keys matching a pattern (the test machines run Redis on 127.0.0.1:6379). */
import Redis from "ioredis";

export async function redisKeys(pattern: string): Promise<string[]> {
	const redis = new Redis("redis://127.0.0.1:6379", { lazyConnect: true, maxRetriesPerRequest: 1 });
	try {
		await redis.connect();
		return await redis.keys(pattern);
	} finally {
		redis.disconnect();
	}
}

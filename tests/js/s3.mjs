// S3 through the endpoint given as the first argument, with credentials from the SDK's default
// provider chain, path-style, default checksum settings. Prints one JSON line, or {error, message}
// with exit status 1.
//   node s3.mjs ENDPOINT presign-get BUCKET KEY            -> {url}
//   node s3.mjs ENDPOINT presign-put BUCKET KEY BODY       -> {url} (the body's CRC32 is in the URL)
//   node s3.mjs ENDPOINT put-file BUCKET KEY PATH ALGO     -> {ETag, checksum} (a streamed upload:
//                                                             aws-chunked with the ALGO trailer)
import { createReadStream, statSync } from "node:fs";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

const [endpoint, command, bucket, key, arg, algorithm] = process.argv.slice(2);
if (!endpoint || !command || !bucket || !key) {
  console.error("usage: node s3.mjs ENDPOINT presign-get|presign-put|put-file BUCKET KEY [BODY|PATH ALGO]");
  process.exit(2);
}
const client = new S3Client({
  endpoint,
  region: process.env.AWS_REGION ?? "us-east-1",
  forcePathStyle: true,
  maxAttempts: 1,
});
try {
  if (command === "presign-get") {
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 300 });
    console.log(JSON.stringify({ url }));
  } else if (command === "presign-put") {
    const put = new PutObjectCommand({ Bucket: bucket, Key: key, Body: arg });
    console.log(JSON.stringify({ url: await getSignedUrl(client, put, { expiresIn: 300 }) }));
  } else if (command === "put-file") {
    const put = new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: createReadStream(arg),
      ContentLength: statSync(arg).size,
      ChecksumAlgorithm: algorithm,
    });
    const out = await client.send(put);
    console.log(JSON.stringify({ ETag: out.ETag, checksum: out[`Checksum${algorithm}`] ?? null }));
  } else {
    throw new Error(`unknown command ${command}`);
  }
} catch (err) {
  console.log(JSON.stringify({ error: err.name, message: err.message }));
  process.exitCode = 1;
}

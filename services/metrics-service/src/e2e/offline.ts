import { readFileSync } from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";

/**
 * What the mesh-level tests compare the live comparison with: labelled messages and the labels each bundled model
 * gives them offline, straight from ONNX Runtime.
 */

/** Messages with the label a person would give them; some are borderline on purpose, so the models may differ. */
export const MESSAGES: [string, "spam" | "ham"][] = [
  ["Congratulations! You have won a FREE cruise. Call now to claim your prize!!!", "spam"],
  [
    "URGENT: your account has been suspended, verify your password at http://secure-login.example.biz",
    "spam",
  ],
  ["Cheap meds online, no prescription needed, 80% off Viagra and Cialis", "spam"],
  ["Make $5000 a week working from home, no experience required, click here", "spam"],
  ["You are a winner! Claim your $1000 Walmart gift card today", "spam"],
  ["Lowest mortgage rates guaranteed, refinance now and save thousands", "spam"],
  ["Dear friend, I am a prince and need your help transferring 10 million dollars", "spam"],
  ["Limited time offer: buy one get one free on all replica watches", "spam"],
  ["Lose 30 pounds in 30 days with this one weird trick doctors hate", "spam"],
  ["Your PayPal payment could not be processed, update your billing information immediately", "spam"],
  ["Hot singles in your area are waiting to meet you tonight", "spam"],
  ["Get rich quick: invest in this penny stock before it explodes", "spam"],
  ["Act now! This exclusive deal expires at midnight, unsubscribe here", "spam"],
  ["FREE ringtones and wallpapers for your phone, text WIN to 80082", "spam"],
  ["Increase your credit score instantly, guaranteed approval, no credit check", "spam"],
  ["Special promotion for valued customers: reply with your bank details to receive a refund", "spam"],
  ["Newsletter: the best deals of the week, save big on electronics", "spam"],
  ["Hi, we noticed unusual activity, please confirm your identity", "spam"],
  ["Earn money by filling in surveys, sign up today", "spam"],
  ["Your package is waiting, pay the customs fee to release it", "spam"],
  ["Hi Sam, are we still on for lunch tomorrow at noon?", "ham"],
  ["The meeting has moved to room 4B, see you at 3pm", "ham"],
  ["Can you review my pull request when you have a minute? Thanks", "ham"],
  ["Mum says dinner is at seven on Sunday, bring the kids", "ham"],
  ["Attached are the minutes from yesterday's planning meeting", "ham"],
  ["I pushed a fix for the build failure, the tests pass locally now", "ham"],
  ["Thanks for the birthday card, it made my day", "ham"],
  ["Reminder: the quarterly report is due on Friday", "ham"],
  ["Does anyone know why the kernel module fails to load after the upgrade?", "ham"],
  ["The train was delayed, I will be about twenty minutes late", "ham"],
  ["Here is the patch against the current release branch, please test", "ham"],
  ["Could you send me the slides from your talk?", "ham"],
  ["We are out of milk, can you pick some up on the way home?", "ham"],
  ["The conference registration is open, our team gets a discount code", "ham"],
  ["Your order has shipped and should arrive on Tuesday", "ham"],
  ["I have attached the invoice for last month's consulting work", "ham"],
  ["Free pizza in the kitchen for whoever wants it", "ham"],
  ["Win or lose, the match on Saturday should be fun, are you coming?", "ham"],
  ["Please update your password on the intranet before Monday, IT says", "ham"],
  ["Click the link in the calendar invite to join the video call", "ham"],
];

export const TEXTS = MESSAGES.map(([text]) => text);
export const TRUTH = MESSAGES.map(([, label]) => label);

/**
 * The labels a bundled model gives `texts`, straight from ONNX Runtime. One text per run, as the sequential calls
 * below reach the model-services (a batch of one), so that not even float rounding can differ.
 */
export async function offlineLabels(modelDir: string, texts: string[]): Promise<string[]> {
  const manifest = JSON.parse(readFileSync(path.join(modelDir, "model.json"), "utf8")) as {
    inputName?: string;
    outputs?: { label?: string };
  };
  const session = await ort.InferenceSession.create(path.join(modelDir, "model.onnx"));
  try {
    const input = manifest.inputName ?? "text";
    const output = manifest.outputs?.label ?? "label";
    const labels: string[] = [];
    for (const text of texts) {
      const result = await session.run({ [input]: new ort.Tensor("string", [text], [1]) });
      const data = result[output]?.data as string[] | undefined;
      labels.push(String(data?.[0]));
    }
    return labels;
  } finally {
    await session.release();
  }
}

export const count = (xs: readonly boolean[]) => xs.filter(Boolean).length;

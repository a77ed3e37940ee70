/** Example messages the Classify page offers: clear spam, clear ham, and a couple that are harder to call. */
export interface Example {
  /** What the button says. */
  title: string;
  /** What a person would call it. */
  kind: "spam" | "ham";
  text: string;
}

export const EXAMPLES: readonly Example[] = [
  {
    title: "Prize winner",
    kind: "spam",
    text:
      "Subject: CONGRATULATIONS!!! You have WON $1,000,000\n\n" +
      "Dear winner, your e-mail address was selected in our international lottery. To claim your cash prize " +
      "send your bank account details and a processing fee of $99 today. Act now, this offer expires in 24 hours! " +
      "Click here: http://claim-your-prize.example.biz",
  },
  {
    title: "Cheap meds",
    kind: "spam",
    text:
      "Subject: Save 80% on prescription drugs - no doctor needed\n\n" +
      "Buy viagra, cialis and other meds online at the lowest prices. 100% satisfaction guaranteed, free shipping " +
      "worldwide. Order now and get a FREE bonus! To unsubscribe from this list reply REMOVE.",
  },
  {
    title: "Work from home",
    kind: "spam",
    text:
      "Subject: Make $5000 a week from home!!!\n\n" +
      "Are you tired of your boss? Our proven system lets you earn thousands of dollars working just 2 hours a day. " +
      "No experience required. Limited spots available - sign up NOW and start making money fast!",
  },
  {
    title: "Meeting notes",
    kind: "ham",
    text:
      "Subject: Re: notes from Tuesday's design review\n\n" +
      "Hi all, attached are my notes from the review. The main open question is whether the cache should live in " +
      "the client library or in the server. Can we discuss it at Thursday's meeting? I've also updated the patch " +
      "to fix the build on Debian. Thanks, Martin",
  },
  {
    title: "Mailing list question",
    kind: "ham",
    text:
      "Subject: Re: [SAtalk] rules for the new version\n\n" +
      "I upgraded last week and the new rules seem to work fine here. One thing I noticed: the Bayes database has to " +
      "be rebuilt after the upgrade, otherwise you get a warning in the logs. Does anyone know if that is expected?",
  },
  {
    title: "Lunch plans",
    kind: "ham",
    text:
      "Subject: lunch tomorrow?\n\nHey, are you free for lunch tomorrow around 12:30? " +
      "There's a new Thai place near the office that Sarah recommended. Let me know!",
  },
];

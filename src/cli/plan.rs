//! `batten plan`: what a run would change, as a unified diff.

use clap::Args;

use super::{RootArgs, SourceArgs};
use crate::exit::{Code, Failure};
use crate::pipeline::{Prepare, Purpose, prepare, sources::nothing_found};

/// `batten plan [--root DIR] [--user-data FILE]`
#[derive(Debug, Args)]
pub struct Plan {
    /// The system to plan for.
    #[command(flatten)]
    pub root: RootArgs,
    /// Where the user-data comes from.
    #[command(flatten)]
    pub source: SourceArgs,
}

impl Plan {
    /// Print the plan; nothing is written.
    pub fn run(&self) -> Result<Code, Failure> {
        let prepared = match prepare(&self.root, &self.source, Purpose::Show, None)? {
            Prepare::Ready(prepared) => prepared,
            Prepare::NothingFound => {
                println!("# {}", nothing_found());
                return Ok(Code::Ok);
            }
            // Only a run stops at the seal; a plan is shown for any instance.
            Prepare::Sealed(id) => {
                println!("# instance {id} is sealed");
                return Ok(Code::Ok);
            }
        };
        println!(
            "# user-data: {} ({})",
            prepared.found.user_data_name, prepared.found.source
        );
        println!(
            "# instance-id: {} (from {})",
            prepared.instance.id, prepared.instance.origin
        );
        print!("{}", prepared.plan.render());
        Ok(Code::Ok)
    }
}
